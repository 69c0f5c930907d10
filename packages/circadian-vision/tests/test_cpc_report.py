"""The cpc report module on records made by the runner from the real params.yaml cells (shrunk)."""

from __future__ import annotations

import math
import re

import matplotlib
import pandas as pd
import pytest

from circadian_core.config import deep_merge
from circadian_core.record import read_record
from circadian_core.runner import run_cell
from pipelines.dag import load_profile
from pipelines.reports import Macros, ReportContext, report_modules
from pipelines.reports import cpc as report
from pipelines.scripts.aggregate import summarize, tidy

matplotlib.use("Agg")

SHRINK = {
    "cpc_shift": {"epochs_a": 3, "epochs_b": 4, "eval_every": 2, "task": {"n_train_per_class": 60, "n_test_per_class": 40},
                  "predictive_coding": {"inference_steps": 3},
                  "circadian": {"inference_steps": 3, "trigger": {"kind": "fixed", "every": 4}}},
    "cpc_toy": {"epochs": 2, "task": {"n_train_per_class": 40, "n_test_per_class": 40},
                "predictive_coding": {"inference_steps": 3}, "circadian": {"inference_steps": 3}},
}
SEEDS = (3, 7, 11)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("cpc_report")
    profile = load_profile("mini")
    records = []
    for name in report.STUDIES:
        study = profile.studies[name]
        for variant in study.variants:
            for seed in SEEDS:
                out = root / "runs" / name / variant / f"seed{seed}.json"
                run_cell(study.entry, deep_merge(study.config(variant), SHRINK[name]), study=name, variant=variant,
                         seed=seed, out=out, device="cpu")
                records.append(read_record(out))
    runs = tidy(records)
    return ReportContext(profile="mini", runs=runs, summary=summarize(runs), records=records, macros=Macros(),
                         tables_dir=root / "tex", csv_dir=root / "csv", figures_dir=root / "pdf",
                         png_dir=root / "png")


def test_report_is_discovered():
    assert report in report_modules()
    assert report.STUDIES == ("cpc_toy", "cpc_shift")


def test_tables_macros_and_published_numbers(ctx):
    report.tables(ctx)
    tex = {p.stem: p.read_text() for p in ctx.tables_dir.glob("*.tex")}
    assert set(tex) == {"cpc_shift", "cpc_width", "cpc_toy"}
    m = ctx.macros.values
    # every macro a table uses is defined (the paper cannot build otherwise)
    for name, body in tex.items():
        used = set(re.findall(r"\\(cpc[A-Za-z]+)", body))
        assert used and used <= set(m), (name, used - set(m))
    for key in ("strength", "hardest"):
        for model in ("backprop", "pc", "circadian"):
            for metric in ("APre", "APost", "BPost", "Retention", "Balanced"):
                assert f"cpc{key.title()}{model.title() if model != 'pc' else 'Pc'}{metric}Mean" in m
    assert m["cpcPublishedStrengthCircadian"] == "0.949" and m["cpcPublishedHardestPc"] == "0.808"
    assert m["cpcPublishedWidthEnd"] == "72.57" and m["cpcPublishedSplits"] == "48.57"
    assert m["cpcHardestWidthStart"] == "24" and m["cpcShiftSeeds"] == "3"
    assert m["cpcStrengthCircMinusPcVerdict"] in ("is above", "is below", "is statistically indistinguishable from")
    assert float(m["cpcStrengthBackpropBalancedMean"]) == pytest.approx(
        ctx.stat("cpc_shift", "strength-backprop", "balanced"), abs=5e-4)
    shift = pd.read_csv(ctx.csv_dir / "cpc_shift_results.csv")
    assert len(shift) == 6 and shift["published_balanced"].notna().sum() == 5


def test_every_macro_the_results_text_uses_is_generated(ctx):
    from pipelines.dag import ROOT

    report.tables(ctx)  # idempotent: the same macros again
    text = (ROOT / "paper" / "sections" / "results_cpc.tex").read_text()
    used = set(re.findall(r"\\(cpc[A-Za-z]+)", text))
    assert used and used <= set(ctx.macros.values), used - set(ctx.macros.values)
    methods = (ROOT / "paper" / "sections" / "methods_cpc.tex").read_text()
    assert not re.findall(r"\\cpc[A-Z]", methods)  # methods are built in every profile: no generated macros


def test_paired_difference_by_hand():
    runs = pd.DataFrame({"study": "s", "variant": ["a", "a", "a", "b", "b", "b"], "seed": [1, 2, 3, 1, 2, 3],
                         "metric": "balanced", "value": [0.9, 0.8, 0.7, 0.8, 0.8, 0.8]})
    c = ReportContext(profile="t", runs=runs, summary=summarize(runs), records=[], macros=Macros(),
                      tables_dir=None, csv_dir=None)  # type: ignore[arg-type]
    d = report.paired_difference(c, "s", "a", "b", "balanced")
    # differences 0.1, 0, -0.1: mean 0, sd 0.1, t(0.975, 2) = 4.302653
    assert d["n"] == 3 and d["mean"] == pytest.approx(0.0, abs=1e-12) and d["wins"] == 1
    assert d["ci95"] == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-6)
    assert report.verdict(0.05, 0.01) == "is above" and report.verdict(-0.05, 0.01) == "is below"
    assert report.verdict(0.0, 0.01) == "is statistically indistinguishable from"


def test_figures_are_written(ctx):
    report.figures(ctx)
    for name in ("cpc_balanced", "cpc_width", "cpc_accuracy"):
        assert (ctx.figures_dir / f"{name}.pdf").stat().st_size > 1000
        assert (ctx.png_dir / f"{name}.png").stat().st_size > 1000
