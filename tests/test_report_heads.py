"""The heads report on records the runner makes from the real params.yaml cells (shrunk), and the cells.

Repository-level (imports ``pipelines``): the package's own tests run with the package alone.
"""

from __future__ import annotations

import re

import matplotlib
import pandas as pd
import pytest

from circadian_core.config import deep_merge
from circadian_core.record import read_record
from circadian_core.runner import run_cell
from circadian_vision.backbones import DigitsBackboneConfig, save_backbone, train_digits_backbone
from circadian_vision.features import build_feature_artifact
from pipelines.dag import ROOT, load_profile
from pipelines.reports import Macros, ReportContext, report_modules
from pipelines.reports import heads as report
from pipelines.scripts.aggregate import summarize, tidy

matplotlib.use("Agg")
pytestmark = pytest.mark.slow  # the fixture runs 20 shrunk cells

SHRINK = {"epochs": 1, "latency_repeats": 2, "predictive_coding": {"hidden": 8, "inference_steps": 2},
          "circadian": {"hidden": 8, "min_hidden": 4, "max_hidden": 16, "inference_steps": 2,
                        "trigger": {"min_spacing": 10, "window": 4, "every": 20}}}
SEEDS = (0, 1)  # two seeds: a paired interval exists, and the 20 cells stay quick


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("heads_report")
    backbone, info = train_digits_backbone(DigitsBackboneConfig(epochs=1, width=4, feature_dim=16))
    cnn = save_backbone(backbone, root / "digits_cnn.pt", trained_on=info)
    feats = root / "digits_features.pt"
    build_feature_artifact({"dataset": {"name": "digits"}, "backbone": {"name": "digits_cnn"}},
                           out=feats, artifacts={"digits_cnn": cnn})
    profile = load_profile("mini")
    records = []
    for name in report.STUDIES:
        study = profile.studies[name]
        for variant in study.variants:
            for seed in SEEDS:
                out = root / "runs" / name / variant / f"seed{seed}.json"
                run_cell(study.entry, deep_merge(study.config(variant), SHRINK), study=name, variant=variant,
                         seed=seed, out=out, device="cpu", artifacts={"digits_features": feats})
                records.append(read_record(out))
    runs = tidy(records)
    return ReportContext(profile="mini", runs=runs, summary=summarize(runs), records=records, macros=Macros(),
                         tables_dir=root / "tex", csv_dir=root / "csv", figures_dir=root / "pdf", png_dir=root / "png")


def test_report_is_discovered():
    assert report in report_modules() and report.STUDIES == ("heads", "heads_ablation")


def test_speed_comes_from_timings_and_every_ablation_has_its_paired_difference(ctx):
    assert not {"train_sps", "infer_p50_ms", "infer_p95_ms", "sleep_overhead"} & set(ctx.runs["metric"])
    report.tables(ctx)
    tex = {p.stem: p.read_text() for p in ctx.tables_dir.glob("*.tex")}
    assert set(tex) == {"heads_results", "heads_ablation", "heads_paired"}
    m = ctx.macros.values
    for name, body in tex.items():
        used = set(re.findall(r"\\(heads[A-Za-z]+)", body))
        assert used and used <= set(m), (name, used - set(m))
    # speed macros are the mean of the records' timings
    sps = [r["timings"]["train_sps"] for r in ctx.records_for("heads", "backprop")]
    assert float(m["headsBackpropSps"].replace(",", "")) == pytest.approx(sum(sps) / len(sps), abs=1.0)
    for variant, _ in report.ABLATIONS:
        prefix = "headsAbl" + "".join(w.title() for w in variant.split("-")) + "MinusFull"
        for part in ("Diff", "Low", "High", "P", "N"):
            assert prefix + part in m, prefix + part
        d = ctx.paired("heads_ablation", variant, "circadian", "accuracy", study_b="heads")
        assert float(m[prefix + "Diff"]) == pytest.approx(d.mean, abs=5e-4) and m[prefix + "N"] == "2"
    for part in ("Diff", "Low", "High", "P", "N"):
        assert f"headsCircadianMinusPredictiveCoding{part}" in m
    abl = pd.read_csv(ctx.csv_dir / "heads_ablation.csv")
    assert {"delta_vs_full", "delta_low", "delta_high", "p", "distinct_end"} <= set(abl.columns)


def test_every_macro_the_results_text_uses_is_generated(ctx):
    report.tables(ctx)
    text = (ROOT / "paper" / "sections" / "results_heads.tex").read_text()
    used = set(re.findall(r"\\(heads[A-Za-z]+)", text))
    assert used and used <= set(ctx.macros.values), used - set(ctx.macros.values)


def test_figures_are_written(ctx):
    report.figures(ctx)
    for name in ("heads_accuracy", "heads_width", "heads_speed"):
        assert (ctx.figures_dir / f"{name}.pdf").stat().st_size > 1000


def _as_dict(v):
    return v if isinstance(v, dict) else {"": v}


def test_params_define_heads_and_ablation_cells():
    switched = {  # variant -> (mechanism block, key, value)
        "no-split": ("split", "enabled", False), "no-prune": ("prune", "enabled", False),
        "no-rollback": ("rollback", "enabled", False), "no-replay": ("replay", "enabled", False),
        "no-reward": ("reward", "enabled", False), "no-spread-gate": ("trigger", "spread_gate", False),
        "fixed-trigger": ("trigger", "kind", "fixed"),
    }
    for name in ("mini", "paper"):
        prof = load_profile(name)
        heads, abl = prof.studies["heads"], prof.studies["heads_ablation"]
        assert set(heads.variants) == {"backprop", "predictive-coding", "circadian"}
        assert set(abl.variants) == set(switched) and heads.seeds == abl.seeds  # paired: the same seeds
        full = heads.config("circadian")["circadian"]
        for variant, (block, key, value) in switched.items():
            cfg = abl.config(variant)
            assert cfg["head"] == "circadian" and cfg["circadian"][block][key] == value
            diff = {(b, k) for b in set(cfg["circadian"]) | set(full)
                    for k in set(_as_dict(cfg["circadian"].get(b))) | set(_as_dict(full.get(b)))
                    if _as_dict(cfg["circadian"].get(b)).get(k) != _as_dict(full.get(b)).get(k)}
            assert diff == {(block, key)}, (name, variant, diff)  # exactly one switch differs
        assert "threads" not in heads.base  # one knob: resources.threads
    assert len(load_profile("mini").studies["heads"].seeds) >= 7  # cells under 5 s: 7 seeds
    assert load_profile("paper").studies["heads"].config("circadian")["epochs"] == 12
