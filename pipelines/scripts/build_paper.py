"""Build paper/build/<profile>/main.pdf with latexmk: ``python -m pipelines.scripts.build_paper [--profile mini]``.

The paper \\input{}s only generated files of its profile (paper/generated/<profile>/, passed to
main.tex as ``\\genroot`` through latexmk's ``-usepretex``), so this stage runs after aggregate and
figures, and one profile's PDF never overwrites another's. Missing TeX gives one error naming the
packages to install. Then every generated macro must appear in the PDF's text, and a blank or
``n/a`` macro is an error unless its report declared it as text (``ctx.text``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from pipelines.dag import ROOT, Profile
from pipelines.reports.context import TEXT_MARK
from pipelines.scripts.errors import profile_main

TEX_HINT = (
    "latexmk not found: install TeX Live (make tex, or apt-get install latexmk texlive-latex-base "
    "texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended texlive-science lmodern)"
)


MACRO = re.compile(r"^\\newcommand\{\\([A-Za-z]+)\}\{(.*?)\}(?:\s+%\s*(.*))?$")


def pdf_text(pdf: Path) -> str:
    """The PDF's text with whitespace collapsed (pdftotext from poppler)."""
    if shutil.which("pdftotext") is None:
        raise RuntimeError("pdftotext not found: install poppler-utils (make tex does it)")
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split())


def read_macro_lines(path: Path) -> dict[str, tuple[str, str]]:
    """{name: (value, comment)} of a generated macros.tex (the comment holds the source and [text])."""
    macros = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = MACRO.match(line.strip())
        if m:
            macros[m.group(1)] = (m.group(2), m.group(3) or "")
    return macros


def read_macros(path: Path) -> dict[str, str]:
    return {name: value for name, (value, _) in read_macro_lines(path).items()}


def declared_text(path: Path) -> set[str]:
    """The macros their reports declared as words (``ctx.text``), marked in macros.tex."""
    return {name for name, (_, comment) in read_macro_lines(path).items() if comment.startswith(TEXT_MARK)}


_TEX_TEXT = (("$\\times$", "\u00d7"), ("\\times", "\u00d7"), ("$\\pm$", "\u00b1"), ("\\pm", "\u00b1"),
             ("\\%", "%"), ("\\_", "_"), ("\\,", ""), ("$", ""), ("{", ""), ("}", ""))


def _as_typeset(value: str) -> str:
    """A macro's TeX source as pdftotext shows it (``8$\\times$8`` -> ``8\u00d78``)."""
    for tex, text in _TEX_TEXT:
        value = value.replace(tex, text)
    return value


SPLIT_MIN_WORDS = 8  # a quoted phrase this long may be split by a page break
PAGE_BREAK_SPAN = 4000  # characters a page break may put inside a quoted value: page number, floats, header


def in_text(value: str, text: str) -> bool:
    """``value`` (as typeset) is in the PDF ``text``: whole, or - a phrase of at least
    :data:`SPLIT_MIN_WORDS` words, long enough to cross a page - as a head of three or more words that ends
    one page and the rest (three or more words) within :data:`PAGE_BREAK_SPAN` characters after it (the
    page number and the floats of the next page come between). Numbers and short phrases must be whole."""
    value = _as_typeset(value)
    if value in text:
        return True
    words = value.split()
    if len(words) < SPLIT_MIN_WORDS:
        return False
    for i in range(len(words) - 3, 2, -1):
        head, tail = " ".join(words[:i]), " ".join(words[i:])
        start = text.find(head)
        while start >= 0:
            end = start + len(head)
            if tail in text[end : end + PAGE_BREAK_SPAN]:
                return True
            start = text.find(head, start + 1)
    return False


def _blank(value: str) -> bool:
    return not value.strip() or value.strip() == "n/a"


def check_numbers(pdf: Path, macros_file: Path) -> list[str]:
    """Problems: a blank or ``n/a`` number, a generated value missing from the PDF, a missing generated file."""
    text = pdf_text(pdf)
    problems = []
    for name, (value, comment) in read_macro_lines(macros_file).items():
        is_text = comment.startswith(TEXT_MARK)
        source = comment.removeprefix(TEXT_MARK).strip() or "no source recorded"
        if _blank(value) and not is_text:
            problems.append(
                f"\\{name} = {value!r} is not a number (source: {source}): the results lack it; fix the report "
                f"or its runs, or declare it as words in its report (ctx.text)"
            )
        elif not _blank(value) and not in_text(value, text):
            problems.append(f"\\{name} = {value!r} is generated but not in the PDF text (quote it or stop generating it)")
    if "is missing: run the pipeline" in text or "is missing: run" in text:
        problems.append("the PDF shows a missing generated file: run the pipeline first")
    if "??" in text:
        problems.append("the PDF has an undefined reference (??)")
    return problems


def latexmk_command(profile: Profile) -> list[str]:
    """latexmk in paper/: this profile's generated folder as ``\\genroot``, its own output folder."""
    genroot = Path(profile.generated).relative_to("paper").as_posix() + "/"
    outdir = Path(profile.build_dir).relative_to("paper").as_posix()
    return ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", f"-outdir={outdir}",
            f"-usepretex=\\def\\genroot{{{genroot}}}", "main.tex"]


def build(profile: Profile) -> int:
    if shutil.which("latexmk") is None:
        print(f"error: {TEX_HINT}", file=sys.stderr)
        return 2
    paper = ROOT / "paper"
    proc = subprocess.run(latexmk_command(profile), cwd=paper, capture_output=True, text=True)
    log = ROOT / profile.build_dir / "main.log"
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else proc.stdout.splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
        print(f"error: latexmk failed (full log: {log})", file=sys.stderr)
        return proc.returncode
    pdf = ROOT / profile.pdf
    problems = check_numbers(pdf, ROOT / profile.macros_tex)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"paper -> {profile.pdf} (every generated number appears in it)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return profile_main(__doc__, build, argv)


if __name__ == "__main__":
    sys.exit(main())
