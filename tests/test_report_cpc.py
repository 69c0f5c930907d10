"""The cpc report on records the runner makes from the real params.yaml cells (shrunk), and the cells.

Repository-level (imports ``pipelines``): the package's own tests run with the package alone.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from circadian_core.config import deep_merge, from_dict
from circadian_core.contract import contract_for
from circadian_core.record import read_record
from circadian_core.runner import run_cell
from circadian_core.stats import paired_difference
from circadian_vision.nets import NETS
from circadian_vision.shift_tasks import make_shift_task
from pipelines.dag import ROOT, load_profile
from pipelines.reports import Macros, ReportContext, report_modules
from pipelines.reports import cpc as report
from pipelines.scripts.aggregate import summarize, tidy

matplotlib.use("Agg")

SHRINK = {
    "cpc_shift": {"epochs_a": 3, "epochs_b": 4, "eval_every": 2, "predictive_coding": {"inference_steps": 3},
                  "circadian": {"inference_steps": 3, "trigger": {"kind": "fixed", "every": 4}}},
    "cpc_toy": {"epochs": 2, "task": {"n_train_per_class": 40, "n_test_per_class": 40},
                "predictive_coding": {"inference_steps": 3}, "circadian": {"inference_steps": 3}},
}
OURS = {"task": {"n_train_per_class": 60, "n_test_per_class": 40}}  # our tasks only (the proto ones are fixed)
SEEDS = (3, 7, 11)


def _shrunk(name: str, variant: str, config: dict) -> dict:
    cfg = deep_merge(config, SHRINK[name])
    if name == "cpc_shift" and not variant.startswith("proto"):
        cfg = deep_merge(cfg, OURS)
    return cfg


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
                run_cell(study.entry, _shrunk(name, variant, study.config(variant)), study=name, variant=variant,
                         seed=seed, out=out, device="cpu")
                records.append(read_record(out))
    runs = tidy(records)
    return ReportContext(profile="mini", runs=runs, summary=summarize(runs), records=records, macros=Macros(),
                         tables_dir=root / "tex", csv_dir=root / "csv", figures_dir=root / "pdf",
                         png_dir=root / "png")


def test_report_is_discovered():
    assert report in report_modules()
    assert report.STUDIES == ("cpc_toy", "cpc_shift")


def test_published_numbers_are_quoted_only_beside_the_prototypes_protocol(ctx):
    report.tables(ctx)
    tex = {p.stem: p.read_text() for p in ctx.tables_dir.glob("*.tex")}
    assert set(tex) == {"cpc_proto", "cpc_shift", "cpc_width", "cpc_paired", "cpc_toy", "cpc_toy_paired"}
    m = ctx.macros.values
    for name, body in tex.items():  # every macro a table uses is defined
        used = set(re.findall(r"\\(cpc[A-Za-z]+)", body))
        assert used and used <= set(m), (name, used - set(m))
    # our extension has no published row, no published macro; the prototype's protocol has them
    assert "cpcPublished" not in tex["cpc_shift"] and "quad published" not in tex["cpc_shift"]
    assert "cpcPublishedProtohardest" in tex["cpc_proto"] and "quad published" in tex["cpc_proto"]
    assert m["cpcPublishedProtohardestCircadianBalanced"] == "0.812"
    assert m["cpcPublishedProtohardestPcBalanced"] == "0.808"
    assert m["cpcPublishedProtostrengthCircadianBalanced"] == "0.949"
    assert m["cpcPublishedProtohardestWidthEnd"] == "72.57" and m["cpcPublishedProtohardestSplits"] == "48.57"
    assert m["cpcProtohardestWidthStart"] == "24" and m["cpcShiftSeeds"] == "3"
    # every stated comparison has its paired difference, CI, test and n as macros
    for profile in ("Protohardest", "Protostrength", "Strength", "Hardest"):
        for part in ("Diff", "Low", "High", "P", "N"):
            assert f"cpc{profile}CircadianMinusPcBalanced{part}" in m
            assert f"cpc{profile}CircadianMinusBackpropBalanced{part}" in m
    d = ctx.paired("cpc_shift", "proto-hardest-circadian", "proto-hardest-pc", "balanced")
    assert float(m["cpcProtohardestCircadianMinusPcBalancedDiff"]) == pytest.approx(d.mean, abs=5e-4)
    assert "paired t-test" in tex["cpc_paired"]
    proto = pd.read_csv(ctx.csv_dir / "cpc_proto_results.csv")
    assert set(proto["source"]) == {"ours", "published"} and len(proto) == 12
    shift = pd.read_csv(ctx.csv_dir / "cpc_shift_results.csv")
    assert set(shift["source"]) == {"ours"} and len(shift) == 6


def test_paired_cells_are_the_core_paired_test():
    runs = pd.DataFrame({"study": "s", "variant": ["a", "a", "a", "b", "b", "b"], "seed": [1, 2, 3, 1, 2, 3],
                         "metric": "balanced", "value": [0.9, 0.8, 0.7, 0.8, 0.8, 0.8]})
    c = ReportContext(profile="t", runs=runs, summary=summarize(runs), records=[], macros=Macros(),
                      tables_dir=None, csv_dir=None)  # type: ignore[arg-type]
    d = c.paired("s", "a", "b", "balanced")
    assert d == paired_difference({1: 0.9, 2: 0.8, 3: 0.7}, {1: 0.8, 2: 0.8, 3: 0.8})
    cells = report.paired_cells(c, ("x", "y"), d, "test")
    assert cells == ["\\xYDiff", "[\\xYLow, \\xYHigh]", "\\xYP", "\\xYN"]
    assert c.macros.values["xYN"] == "3" and float(c.macros.values["xYDiff"]) == pytest.approx(0.0)


def test_every_macro_the_results_text_uses_is_generated(ctx):
    report.tables(ctx)  # idempotent: the same macros again
    text = (ROOT / "paper" / "sections" / "results_cpc.tex").read_text()
    used = set(re.findall(r"\\(cpc[A-Za-z]+)", text))
    assert used and used <= set(ctx.macros.values), used - set(ctx.macros.values)
    methods = (ROOT / "paper" / "sections" / "methods_cpc.tex").read_text()
    assert not re.findall(r"\\cpc[A-Z]", methods)  # methods are built in every profile: no generated macros
    assert "narrower starting hidden layer, as in the prototype" not in methods


def test_figures_are_written(ctx):
    report.figures(ctx)
    for name in ("cpc_balanced", "cpc_width", "cpc_accuracy"):
        assert (ctx.figures_dir / f"{name}.pdf").stat().st_size > 1000
        assert (ctx.png_dir / f"{name}.png").stat().st_size > 1000


def test_every_mini_and_paper_cell_has_a_valid_config():
    for name in ("mini", "paper"):
        profile = load_profile(name)
        for study_name in ("cpc_toy", "cpc_shift"):
            study = profile.studies[study_name]
            contract = contract_for(study.entry)
            for variant in study.variants:
                cfg = contract.settings_of(study.config(variant), where=f"{study_name}/{variant}")
                for model in NETS:  # every network block parses, not only the one the cell runs
                    from_dict(NETS[model].config_class, getattr(cfg, model), where=f"{variant}.{model}")
                if study_name == "cpc_shift":
                    task_cfg, _ = make_shift_task(cfg.task, 3)
                    assert task_cfg.profile == variant.rsplit("-", 1)[0] + ("-case" if "proto" not in variant else "")
    shift = load_profile("mini").studies["cpc_shift"]
    assert list(shift.seeds) == [3, 7, 11, 19, 23, 31, 37]  # the prototype's seeds
    proto = from_dict(contract_for(shift.entry).settings, shift.config("proto-hardest-circadian"))
    assert proto.sleep_every == [40, 6] and proto.batch_size is None and (proto.epochs_a, proto.epochs_b) == (120, 180)
    assert proto.circadian["trunk"] == [24, 24] and proto.circadian["hidden"] == 24
    assert proto.circadian["reward"]["enabled"] is False  # the prototype's hardest case: no reward modulation
    assert load_profile("mini").studies["cpc_toy"].seeds == shift.seeds  # cells under 5 s: 7 seeds


def test_a_cell_runs_in_a_fresh_process_without_torch(tmp_path):
    out = tmp_path / "seed3.json"
    code = (
        "import sys\n"
        "from pipelines.scripts.run_cell import main\n"
        "rc = main(['cpc_shift', 'hardest-pc', '3', '--out', sys.argv[1]])\n"
        "assert 'torch' not in sys.modules, 'the NumPy study imported torch'\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(Path(out).read_text())
    assert rec["study"] == "cpc_shift" and rec["metrics"]["hidden_start"] == 24
    assert rec["info"]["task"]["profile"] == "hardest-case" and rec["contract_version"] == 2
