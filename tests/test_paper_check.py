"""The paper stage's number check: values compared as typeset; a blank or n/a number is refused
unless its report declared it as text (issue 16, point 2)."""

import math

import pytest

from pipelines.reports.context import MacroError, Macros
from pipelines.scripts import build_paper
from pipelines.scripts.build_paper import _as_typeset


def test_tex_values_are_compared_as_typeset():
    assert _as_typeset("8$\\times$8") == "8\u00d78"
    assert _as_typeset("0.91\\,$\\pm$\\,0.02") == "0.91\u00b10.02"
    assert _as_typeset("12\\%") == "12%"
    assert _as_typeset("+0.370") == "+0.370"


# ---- issue 16, point 2: a blank or n/a macro is not a number the paper may print ---------------

def _check(tmp_path, monkeypatch, macros: Macros, pdf_text: str) -> list[str]:
    path = tmp_path / "macros.tex"
    path.write_text(macros.render())
    monkeypatch.setattr(build_paper, "pdf_text", lambda pdf: pdf_text)
    return build_paper.check_numbers(tmp_path / "main.pdf", path)


@pytest.mark.parametrize("value", [float("nan"), None, math.inf])
def test_a_missing_number_is_an_error_naming_its_source(value):
    with pytest.raises(MacroError, match=r"\\hAccMean \(mini:h/v/acc mean\)"):
        Macros().add(("h", "acc", "mean"), value, source="mini:h/v/acc mean")


@pytest.mark.parametrize("value", ["", "  ", "n/a"])
def test_a_blank_or_na_text_passed_as_a_number_is_an_error(value):
    with pytest.raises(MacroError, match=r"\\x \(mini:s/v/m\) is .*not a number.*ctx.text"):
        Macros().add("x", value, source="mini:s/v/m")


def test_a_declared_text_macro_is_marked_and_read_back(tmp_path):
    m = Macros()
    m.text("profile", "mini", source="params.yaml profile")
    m.text(("hal", "merge", "note"), "n/a", source="hal: no merge in this variant")
    m.add("acc", 0.91234, source="s/v/acc")
    path = tmp_path / "macros.tex"
    path.write_text(m.render())
    assert build_paper.declared_text(path) == {"profile", "halMergeNote"}
    assert build_paper.read_macros(path) == {"profile": "mini", "halMergeNote": "n/a", "acc": "0.912"}
    assert set(m.frame()["kind"]) == {"text", "number"}


def test_the_check_refuses_blank_and_na_numbers_in_an_old_macros_file(tmp_path, monkeypatch):
    """A macros.tex written before the check (or by hand) with n/a and blank values fails the paper stage."""
    path = tmp_path / "macros.tex"
    path.write_text("\\newcommand{\\a}{0.5}  % s/v/a mean\n\\newcommand{\\b}{n/a}  % mini:c/no-dreams/rate mean\n"
                    "\\newcommand{\\c}{}\n")
    monkeypatch.setattr(build_paper, "pdf_text", lambda pdf: "the value 0.5 is here")
    problems = build_paper.check_numbers(tmp_path / "main.pdf", path)
    assert len(problems) == 2
    assert "\\b = 'n/a' is not a number (source: mini:c/no-dreams/rate mean)" in problems[0]
    assert "\\c = ''" in problems[1] and "ctx.text" in problems[1]


def test_declared_text_passes_and_numbers_must_still_be_in_the_pdf(tmp_path, monkeypatch):
    m = Macros()
    m.text(("merge", "note"), "n/a", source="not applicable by design")
    m.text(("blank",), "", source="an empty note")
    m.add("acc", 0.5, source="s/v/acc")
    assert _check(tmp_path, monkeypatch, m, "acc 0.500 and n/a") == []
    problems = _check(tmp_path, monkeypatch, m, "only n/a here")
    assert len(problems) == 1 and "\\acc = '0.500' is generated but not in the PDF" in problems[0]


def test_a_long_phrase_split_by_a_page_break_is_found_a_number_or_short_phrase_is_not():
    """A quoted sentence may end one page and go on after the page number and the next page's floats;
    a number, or a phrase too short to tell apart, must appear whole."""
    phrase = "not the setting of the prototype (CIFAR-100 on ImageNet ResNet-50 features), so its published accuracies"
    words = phrase.split()
    head, tail = " ".join(words[:9]), " ".join(words[9:])  # "... ImageNet" | "ResNet-50 features), ..."
    page = f"this build is {head} 14 Table 8: Strength case 0.95 0.94 {tail} are not comparable"
    assert build_paper.in_text(phrase, page)
    assert not build_paper.in_text(phrase, page.replace(tail[:12], "x"))  # the rest must be there
    far = f"this build is {head} 14 " + "filler " * 1000 + tail
    assert not build_paper.in_text(phrase, far)  # too far after the head to be the same sentence
    assert not build_paper.in_text("0.913", "0.91 3") and build_paper.in_text("0.913", "x 0.913 y")
    assert not build_paper.in_text("does not hold", "the order does 12 Table 3 not hold")
