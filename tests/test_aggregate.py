"""Aggregation statistics and macro naming against hand-computed values."""

import math

import pandas as pd
import pytest

from pipelines.reports.context import Macros, fmt_number, latex_table, macro_name
from pipelines.scripts.aggregate import summarize, tidy


def test_summary_mean_std_and_t_interval():
    runs = pd.DataFrame(
        {"study": "s", "variant": "v", "seed": [1, 2, 3], "metric": "acc", "value": [0.5, 0.6, 0.7]}
    )
    row = summarize(runs).iloc[0]
    assert row["n"] == 3
    assert row["mean"] == pytest.approx(0.6)
    assert row["std"] == pytest.approx(0.1)
    # t(0.975, 2) = 4.302653; half-width = 4.302653 * 0.1 / sqrt(3)
    assert row["ci95"] == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-6)


def test_single_seed_has_no_interval():
    runs = pd.DataFrame({"study": "s", "variant": "v", "seed": [1], "metric": "acc", "value": [0.5]})
    row = summarize(runs).iloc[0]
    assert row["n"] == 1 and math.isnan(row["ci95"])


def test_tidy_flattens_nested_metrics_and_keeps_nulls():
    recs = [{"study": "s", "variant": "v", "seed": 1, "metrics": {"a": 1.0, "b": {"c": None}, "name": "x"}}]
    frame = tidy(recs)
    assert set(frame["metric"]) == {"a", "b.c"}
    assert frame.set_index("metric").loc["b.c", "value"] != frame.set_index("metric").loc["b.c", "value"]  # NaN


def test_macro_names_are_letters_only():
    assert macro_name(("cpc", "strength-case", "seed 3")) == "cpcStrengthCaseSeedThree"
    assert macro_name("hal_nrem_rem") == "halNremRem"


def test_macro_conflict_is_an_error():
    m = Macros()
    assert m.add("x", 0.1234) == "\\x"
    assert m.values["x"] == "0.123"
    m.add("x", 0.1234)  # same value twice is fine
    with pytest.raises(ValueError, match="defined twice"):
        m.add("x", 0.5)


def test_number_format_and_table():
    assert fmt_number(float("nan")) == "n/a"
    assert fmt_number(-0.25, ".2f") == "-0.25"
    tex = latex_table(["a", "b"], [["x", "\\y"]], caption="c", label="tab:t")
    assert "\\toprule" in tex and "x & \\y \\\\" in tex and "\\label{tab:t}" in tex


def test_report_context_paired_difference_and_macros(tmp_path):
    import pandas as pd

    from pipelines.reports.context import Macros, ReportContext

    runs = pd.DataFrame([{"study": "s", "variant": v, "seed": i, "metric": "m", "value": x}
                         for i in range(4) for v, x in (("a", 0.9 + 0.01 * i), ("b", 0.8))])
    ctx = ReportContext("mini", runs, pd.DataFrame(columns=["study", "variant", "metric"]), [], Macros(),
                        tmp_path / "t", tmp_path / "c")
    d = ctx.paired("s", "a", "b", "m")
    assert d.n == 4 and d.verdict() == "above"
    text = ctx.paired_pm(("x",), d, source="mini:s/a-b/m")
    assert "paired t-test" in text and ctx.macros.values["xDiff"] == "+0.115"
    assert ctx.macros.values["xN"] == "4"
    assert math.isnan(ctx.val("s", "zzz", "m"))
