"""The plastic report on records the runner makes from the real params.yaml cells (shrunk), and the cells.

Repository-level (imports ``pipelines``): the package's own tests run with the package alone.
"""

from __future__ import annotations

import re

import matplotlib
import pandas as pd
import pytest
import yaml

from circadian_core.config import deep_merge
from circadian_core.contract import contract_for
from circadian_core.record import read_record
from circadian_core.runner import run_cell
from pipelines.dag import ROOT, load_profile
from pipelines.reports import Macros, ReportContext, report_modules
from pipelines.reports import plastic as report
from pipelines.scripts.aggregate import summarize, tidy

matplotlib.use("Agg")
pytestmark = pytest.mark.slow  # the fixture runs 12 shrunk cells

# random-projection eyes computed in the cell (no artifact), a short curriculum, small brains
SHRINK = {"features": None, "eyes": {"kind": "random_projection"},
          "curriculum": {"steps": [12, 12, 12], "eval_every": 6},
          "plastic": {"block": {"hidden_dim": 64, "k": 8}, "memory_size": 75},
          "triarchic": {"hidden_dim": 128}}
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    root = tmp_path_factory.mktemp("plastic_report")
    study = load_profile("mini").studies["plastic"]
    records = []
    for variant in study.variants:
        for seed in SEEDS:
            out = root / "runs" / "plastic" / variant / f"seed{seed}.json"
            run_cell(study.entry, deep_merge(study.config(variant), SHRINK), study="plastic", variant=variant,
                     seed=seed, out=out, device="cpu")
            records.append(read_record(out))
    runs = tidy(records)
    return ReportContext(profile="mini", runs=runs, summary=summarize(runs), records=records, macros=Macros(),
                         tables_dir=root / "tex", csv_dir=root / "csv", figures_dir=root / "pdf", png_dir=root / "png")


def test_report_is_discovered():
    assert report in report_modules() and report.STUDIES == ("plastic",)


def test_retention_after_phase2_is_the_headline_with_paired_comparisons(ctx):
    report.tables(ctx)
    tex = {p.stem: p.read_text() for p in ctx.tables_dir.glob("*.tex")}
    assert set(tex) == {"plastic_retention", "plastic_storm", "plastic_adaptation", "plastic_paired"}
    m = ctx.macros.values
    for name, body in tex.items():
        used = set(re.findall(r"\\(plastic[A-Za-z]+)", body))
        assert used and used <= set(m), (name, used - set(m))
    assert "after storm" not in tex["plastic_retention"]  # the storm is reported in its own table
    assert "retention_core" not in tex["plastic_retention"]
    for prefix in ("plasticPlasticBrainMinusMemoryOnlyRetentionAfterPhaseTwo", "plasticPlasticBrainMinusMemoryOnlyACC",
                   "plasticTriarchicCoreMinusBoth"):
        for part in ("Diff", "Low", "High", "P", "N"):
            assert prefix + part in m, prefix + part
    d = ctx.paired("plastic", "plastic-brain", "memory-only", "cl.acc")
    assert float(m["plasticPlasticBrainMinusMemoryOnlyACCDiff"]) == pytest.approx(d.mean, abs=5e-4)
    # memory capacity against the stream: 75 of 36 x 16 = 576 samples
    assert m["plasticMemory"] == "75" and m["plasticStream"] == "576" and m["plasticMemoryPct"] == "13.0"
    assert m["plasticWrongReward"] == "-0.2" and m["plasticTriCoreLr"] == "0.05"
    ret = pd.read_csv(ctx.csv_dir / "plastic_retention.csv")
    assert ret.set_index("model").loc["triarchic", "retention_core.after_phase2"] >= 0
    assert pd.isna(ret.set_index("model").loc["naive-linear", "retention_core.after_phase2"])  # not applicable


def test_every_macro_the_results_text_uses_is_generated(ctx):
    report.tables(ctx)
    text = (ROOT / "paper" / "sections" / "results_plastic.tex").read_text()
    used = set(re.findall(r"\\(plastic[A-Za-z]+)", text))
    assert used and used <= set(ctx.macros.values), used - set(ctx.macros.values)


def test_figures_are_written(ctx):
    report.figures(ctx)
    for name in ("plastic_phases", "plastic_dynamics"):
        assert (ctx.figures_dir / f"{name}.pdf").stat().st_size > 1000


def test_params_memory_is_the_prototypes_fraction_of_the_stream_and_core_lr_its_value():
    pub = yaml.safe_load((ROOT / "pipelines" / "reports" / "published.yaml").read_text())["plastic"]
    fraction = pub["memory_size"] / pub["stream"]
    for name in ("mini", "paper"):
        study = load_profile(name).studies["plastic"]
        contract = contract_for(study.entry)
        for variant in study.variants:
            cfg = contract.settings_of(study.config(variant), where=f"{name}:plastic/{variant}")
            stream = sum(cfg.curriculum.steps) * cfg.curriculum.batch_size
            if cfg.model == "plastic_brain":
                assert cfg.plastic.memory_size == pytest.approx(fraction * stream, abs=1), (name, variant)
                assert cfg.plastic.wrong_reward == -0.2 and cfg.plastic.norm == "batch"
            assert cfg.triarchic.core_lr == 0.05
    assert load_profile("paper").studies["plastic"].config("plastic-brain")["plastic"]["memory_size"] == 60000
    assert len(load_profile("mini").studies["plastic"].seeds) >= 7
