"""pipelines/reports/hal.py on records with known accuracy matrices: derived metrics, the 50% target check."""

from __future__ import annotations

import re

import matplotlib
import pytest

from pipelines.reports import Macros, ReportContext, report_modules
from pipelines.reports import hal as report
from pipelines.scripts.aggregate import summarize, tidy

matplotlib.use("Agg")


def matrix(forget: float, final_last: float = 0.9) -> list[list[float]]:
    """2 tasks: task 0 learned to 1.0, then loses ``forget``."""
    return [[1.0, 0.5], [1.0 - forget, final_last]]


FORGETTING = {  # variant -> per-seed forgetting (task, class)
    "no-sleep": ([0.40, 0.50, 0.60], [0.8, 0.8, 0.8]),
    "nrem": ([0.30, 0.35, 0.40], [0.9, 0.9, 0.9]),
    "nrem-rem": ([0.10, 0.10, 0.12], [0.6, 0.7, 0.8]),
    "replay-0": ([0.4, 0.5, 0.6], [0.8, 0.9, 0.7]),
    "scale-half": ([0.2, 0.25, 0.3], [0.5, 0.6, 0.7]),
    "finetune": ([0.9, 0.9, 0.9], [1.0, 1.0, 1.0]),
    "ewc": ([0.5, 0.5, 0.5], [1.0, 1.0, 1.0]),
    "er": ([0.1, 0.1, 0.1], [0.5, 0.5, 0.5]),
}


def record(variant: str, seed: int) -> dict:
    til, cil = FORGETTING[variant]
    mats = {"task": matrix(til[seed]), "class": matrix(cil[seed])}
    method = variant if variant in ("finetune", "ewc", "er") else "hal"
    metrics = {"wake_images_per_s": 1000.0 + seed, "merge_ms": 2.0}
    for sc, p in (("task", "til"), ("class", "cil")):
        m = mats[sc]
        metrics.update({f"{p}_acc": (m[1][0] + m[1][1]) / 2, f"{p}_bwt": m[1][0] - m[0][0],
                        f"{p}_forgetting": m[0][0] - m[1][0]})
    cfg = {"method": method, "model": {"width": 8}, "lora": {"rank": 4, "alpha": 8.0},
           "memory": {"capacity": 200, "replay_n": 32}, "wake": {"epochs": 1, "batch_size": 32},
           "rem": {"steps": 5, "temperature": 2.0}}
    info = {"tasks": ["digits 0,1", "digits 2,3"], "image_shape": [1, 8, 8], "accuracy_matrix": mats, "method": method,
            "scenarios": {"task": {"trainable_params": 1000, "total_params": 20000}}}
    return {"study": "hal", "variant": variant, "seed": seed, "config": cfg, "metrics": metrics, "info": info,
            "history": {}, "device": "cpu"}


@pytest.fixture
def ctx(tmp_path):
    records = [record(v, s) for v in FORGETTING for s in range(3)]
    runs = tidy(records)
    return ReportContext(profile="mini", runs=runs, summary=summarize(runs), records=records, macros=Macros(),
                         tables_dir=tmp_path / "tex", csv_dir=tmp_path / "csv", figures_dir=tmp_path / "pdf",
                         png_dir=tmp_path / "png")


def test_report_is_discovered():
    assert report in report_modules() and report.STUDIES == ("hal",)


def test_tables_derive_from_accuracy_matrices_and_check_the_target(ctx):
    report.tables(ctx)
    m = ctx.macros.values
    assert m["halNoSleepTilForgettingMean"] == "0.500" and m["halNremRemTilForgettingMean"] == "0.107"
    # reduction of the means: 1 - (.1 + .1 + .12) / 3 / .5 = 0.787
    assert m["halTargetNremRemTilReduction"] == "79"
    # margins F - F_base / 2 per seed: -.1, -.15, -.18: the whole interval is below 0
    assert m["halTargetNremRemTilMargin"] == "-0.143" and m["halTargetNremRemTilVerdict"] == "reached"
    assert m["halTargetNremTilVerdict"] == "not reached"  # margins .1, .1, .1
    assert m["halTargetReplayZeroTilVerdict"] == "not reached"  # forgets like the baseline
    assert m["halTargetNremRemCilVerdict"] == "not reached"  # margins .2, .3, .4
    assert m["halTargetScaleHalfCilVerdict"] == "undecided"  # margins .1, .2, .3 -> .2 +- .248
    assert m["halSequence"] == "Split-Digits" and m["halSeeds"] == "3" and m["halTasks"] == "2"
    tex = {p.stem: p.read_text() for p in ctx.tables_dir.glob("*.tex")}
    assert set(tex) == {"hal_results", "hal_target"}
    for body in tex.values():
        used = set(re.findall(r"\\(hal[A-Za-z]+)", body))
        assert used and used <= set(m), used - set(m)


def test_a_record_whose_metric_disagrees_with_its_matrix_is_an_error(ctx):
    ctx.records[0]["metrics"]["til_forgetting"] = 0.123
    with pytest.raises(ValueError, match="differs from its accuracy matrix"):
        report.tables(ctx)


def test_figures(ctx):
    report.figures(ctx)
    assert {p.stem for p in ctx.png_dir.glob("*.png")} == {"hal_forgetting", "hal_first_task"}


def test_every_macro_the_results_text_uses_is_generated(ctx):
    from pipelines.dag import ROOT

    report.tables(ctx)
    text = (ROOT / "paper" / "sections" / "results_hal.tex").read_text()
    used = set(re.findall(r"\\(hal[A-Z][A-Za-z]*)", text))
    assert used and used <= set(ctx.macros.values), used - set(ctx.macros.values)
