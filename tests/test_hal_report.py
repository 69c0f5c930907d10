"""pipelines/reports/hal.py and hal_seqcl.py on records with known accuracy matrices, read through the
study's contract: derived metrics, the target verdict (forgetting AND accuracy), the reference-method order."""

from __future__ import annotations

import dataclasses
import re

import matplotlib
import pytest

from circadian_core.config import ConfigError
from hal_sleep_wake.config import load_config
from hal_sleep_wake.studies import CONTRACT, ScenarioRun, ViewResult, metrics_of
from pipelines.dag import ROOT as ROOT_DIR
from pipelines.reports import Macros, ReportContext, report_modules
from pipelines.reports import hal as report
from pipelines.reports import hal_seqcl as seqcl_report
from pipelines.scripts.aggregate import summarize, tidy

matplotlib.use("Agg")


def matrix(forget: float, final_last: float = 0.9, first: float = 1.0) -> list[list[float]]:
    """2 tasks: task 0 learned to ``first``, then loses ``forget``."""
    return [[first, 0.5], [first - forget, final_last]]


def _run(scenario: str, views: list[str]) -> ScenarioRun:
    return ScenarioRun(scenario=scenario, name=scenario, views=views, lora_targets=[], trainable_params=1000,
                       total_params=20000, buffer_fill=1.0, buffer_classes={"0": 100, "1": 100}, sleeps=2, merges=2,
                       merged_layers=40, dropped=0, rem_loss_first=[], rem_loss_last=[], adapter_norm_at_sleep=[],
                       wake_images=1000, wake_loss=[[0.5]], train_acc=[[0.9]])


def record(study: str, variant: str, seed: int, views: dict[str, list[list[float]]], config: dict,
           continual: bool = True, tasks: list[str] | None = None) -> dict:
    one_head = study in ("hal_seqcl", "hal_seqmnist")
    vs = [ViewResult(v, "one-head" if one_head else v, m) for v, m in views.items()]
    runs = [_run("one-head", list(views))] if one_head else [_run(v, [v]) for v in views]
    info = {"tasks": tasks or ["digits 0,1", "digits 2,3"], "classes_per_task": [2, 2], "train_sizes": [10, 10],
            "test_sizes": [5, 5], "image_shape": [1, 8, 8], "method": config.get("method", "hal"),
            "continual": continual, "views": [dataclasses.asdict(v) for v in vs],
            "runs": [dataclasses.asdict(r) for r in runs]}
    cfg = dataclasses.asdict(load_config(config))
    return {"study": study, "variant": variant, "seed": seed, "config": cfg, "metrics": metrics_of(vs, continual),
            "info": info, "history": {}, "device": "cpu", "contract_version": CONTRACT.version,
            "timings": {"wake_images_per_s": 1000.0 + seed, "merge_ms": 2.0}}


FORGETTING = {  # variant -> per-seed forgetting (task, class)
    "no-sleep": ([0.40, 0.50, 0.60], [0.8, 0.8, 0.8]),
    "nrem": ([0.30, 0.35, 0.40], [0.9, 0.9, 0.9]),
    "reset-opt": ([0.4, 0.5, 0.6], [0.8, 0.9, 0.7]),
    "rem": ([0.2, 0.25, 0.3], [0.5, 0.6, 0.7]),
    "sleep": ([0.10, 0.10, 0.12], [0.6, 0.7, 0.8]),
    "compress": ([0.05, 0.05, 0.05], [0.1, 0.1, 0.1]),
    "sleep-compress": ([0.1, 0.1, 0.1], [0.5, 0.5, 0.5]),
}


def hal_records() -> list[dict]:
    out = []
    for v, (til, cil) in FORGETTING.items():
        for s in range(3):
            # "compress" forgets little because it never learned: task 0 reached only 0.3 (chance is 0.5 ...
            # of a 2-class task, so 0.3 is below chance); its ACC is far below the baseline's
            first = 0.3 if v == "compress" else 1.0
            views = {"task": matrix(til[s], first=first), "class": matrix(cil[s], first=first)}
            if v == "reset-opt":  # a variant run class-incremental only
                views.pop("task")
            out.append(record("hal", v, s, views, {"method": "hal", "scenarios": list(reversed(views))}))
    return out


def make_ctx(tmp_path, records: list[dict]) -> ReportContext:
    runs = tidy(records)
    return ReportContext(profile="mini", runs=runs, summary=summarize(runs), records=records, macros=Macros(),
                         tables_dir=tmp_path / "tex", csv_dir=tmp_path / "csv", figures_dir=tmp_path / "pdf",
                         png_dir=tmp_path / "png")


@pytest.fixture
def ctx(tmp_path):
    return make_ctx(tmp_path, hal_records())


def test_reports_are_discovered_and_share_the_packages_prefixes():
    mods = report_modules()
    assert report in mods and seqcl_report in mods
    assert report.STUDIES == ("hal", "hal_extended") and seqcl_report.STUDIES == ("hal_seqcl", "hal_seqmnist")
    from hal_sleep_wake import config

    assert report.SCENARIO_PREFIX is config.SCENARIO_PREFIX  # declared once, in the package
    assert not any(name.endswith("_ci") for name in vars(report))  # one t-interval: circadian_core.stats


def test_tables_derive_from_accuracy_matrices_and_check_the_target(ctx):
    report.tables(ctx)
    m = ctx.macros.values
    assert m["halNoSleepTilForgettingMean"] == "0.500" and m["halSleepTilForgettingMean"] == "0.107"
    # reduction of the means: 1 - (.1 + .1 + .12) / 3 / .5 = 0.787
    assert m["halTargetSleepTilReduction"] == "79"
    # margins F - F_base / 2 per seed: -.1, -.15, -.18: the whole interval is below 0; ACC is higher
    assert m["halTargetSleepTilMargin"] == "-0.143" and m["halTargetSleepTilVerdict"] == "reached"
    assert m["halTargetNremTilVerdict"] == "not reached"  # margins .1, .1, .1
    assert m["halTargetResetOptCilVerdict"] == "not reached" and "halTargetResetOptTilVerdict" not in m
    assert "n/a" not in m.values()  # a scenario a variant does not run is "--" in the table, not an n/a macro
    assert m["halTargetSleepCilVerdict"] == "not reached"  # margins .2, .3, .4
    assert m["halTargetRemCilVerdict"] == "undecided"  # margins .1, .2, .3 -> .2 +- .248
    # forgetting 0.05 (a 90% reduction) but ACC far below the baseline's: not reached (the degenerate model)
    assert m["halTargetCompressTilReduction"] == "90" and m["halTargetCompressTilVerdict"] == "not reached"
    assert float(m["halTargetCompressTilAccHigh"]) < 0
    assert m["halSequence"] == "Split-Digits" and m["halSeeds"] == "3" and m["halTasks"] == "2"
    # one-change comparisons as paired differences with their test
    assert m["halSleepVsNoSleepCilForgettingDiff"] == "-0.100" and "halSleepVsNoSleepCilForgettingP" in m
    assert "halSleepCompressVsSleepTilAccDiff" in m
    tex = {p.stem: p.read_text() for p in ctx.tables_dir.glob("*.tex")}
    assert set(tex) == {"hal_results", "hal_target"}
    reset_row = next(line for line in tex["hal_results"].splitlines() if line.startswith("Optimizer reset"))
    assert reset_row.count("--") == 3
    for body in tex.values():
        used = set(re.findall(r"\\(hal[A-Za-z]+)", body))
        assert used and used <= set(m), used - set(m)


def test_a_record_whose_metric_disagrees_with_its_matrix_is_an_error(ctx):
    ctx.records[0]["metrics"]["til_forgetting"] = 0.123
    with pytest.raises(ValueError, match="differs from its accuracy matrix"):
        report.tables(ctx)


def test_a_record_of_an_older_contract_is_refused(ctx):
    ctx.records[0]["contract_version"] = 1
    with pytest.raises(ConfigError, match="contract 'hal' version 1"):
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


# ---- the reference methods on Mammoth's protocol ------------------------------------------------
SEQCL = {  # variant: (config, per-seed class-IL final row, task-IL final row)
    "finetune": ({"method": "finetune"}, [0.20, 0.21, 0.19]),
    "joint": ({"method": "joint"}, [0.90, 0.92, 0.91]),
    "er-200": ({"method": "er"}, [0.60, 0.64, 0.62]),
    "derpp-200": ({"method": "derpp"}, [0.70, 0.75, 0.72]),
    "derpp-200-one-forward": ({"method": "derpp", "der": {"one_forward": True}}, [0.80, 0.82, 0.81]),
    "lwf": ({"method": "lwf"}, [0.2, 0.2, 0.2]),
}


def seqcl_records(tasks: list[str] | None = None, swap: bool = False, study: str = "hal_seqcl",
                  model: dict | None = None) -> list[dict]:
    out = []
    for v, (cfg, accs) in SEQCL.items():
        if model is not None:
            if v.endswith("one-forward"):
                continue  # the BatchNorm diagnostic: not in the MLP study
            cfg = {**cfg, "model": model}
        if swap and v in ("er-200", "derpp-200"):
            accs = SEQCL["derpp-200" if v == "er-200" else "er-200"][1]
        for s, a in enumerate(accs):
            joint = v == "joint"
            views = {"class": [[0.0 if joint else 1.0, 0.0], [a, a]], "task": [[0.5 if joint else 1.0, 0.5], [a + .2, a + .2]]}
            out.append(record(study, v, s, views, {**cfg, "scenarios": ["one-head"]}, continual=not joint,
                              tasks=tasks))
    return out


def test_seqcl_table_and_the_literatures_order(tmp_path):
    ctx = make_ctx(tmp_path, seqcl_records())
    seqcl_report.tables(ctx)
    m = ctx.macros.values
    assert m["halSeqclOrderHolds"] == "holds"
    assert m["halSeqclOrderDerppErVerdict"] == "above" and m["halSeqclOrderDerppErDiff"] == "+10.3"
    assert m["halSeqclJointClassAccMean"] == "91.0" and "halSeqclJointClassForgettingMean" not in m  # joint: no F
    tex = (ctx.tables_dir / "hal_seqcl.tex").read_text()
    assert "Mammoth" not in tex.split("\\caption")[0] and "DER++ (200)" in tex and "--" in tex
    order = [tex.index(lab) for lab in ("Joint", "SGD fine-tuning", "LwF", "ER (200)", "DER++ (200)",
                                        "DER++ (200, one forward)")]
    assert order == sorted(order)
    # the order check reads Mammoth's DER++; the one-forward diagnostic is compared beside it
    assert m["halSeqclOneForwardVsErVerdict"] == "above" and m["halSeqclOneForwardVsDerppDiff"] == "+8.7"
    used = set(re.findall(r"\\(hal[A-Za-z]+)", tex))
    assert used <= set(m), used - set(m)


def test_seqmnist_has_its_own_table_macros_and_order_beside_seqcl(tmp_path):
    """Mammoth's Seq-MNIST protocol (the MLP study) reports under its own prefix, next to hal_seqcl's, with
    the MLP's hidden size and no ResNet width or norm; the one-forward diagnostic is not there."""
    recs = seqcl_records() + seqcl_records(study="hal_seqmnist", swap=True, model={"arch": "mlp", "hidden": 100})
    ctx = make_ctx(tmp_path, recs)
    seqcl_report.tables(ctx)
    m = ctx.macros.values
    assert m["halSeqclOrderHolds"] == "holds" and m["halSeqmnistOrderHolds"] == "does not hold"
    assert m["halSeqmnistOrderDerppErVerdict"] == "below" and m["halSeqclOrderDerppErVerdict"] == "above"
    assert m["halSeqmnistHidden"] == "100" and "halSeqmnistWidth" not in m and "halSeqmnistNorm" not in m
    assert "halSeqclHidden" not in m and m["halSeqclWidth"] == "8"
    assert not any(k.startswith("halSeqmnistOneForward") for k in m)
    tex = (ctx.tables_dir / "hal_seqmnist.tex").read_text()
    assert "tab:hal-seqmnist" in tex and "MNIST network" in tex and "one forward" not in tex
    assert set(re.findall(r"\\(hal[A-Za-z]+)", tex)) <= set(m)
    text = (ROOT_DIR / "paper" / "sections" / "results_hal_seqcl.tex").read_text()
    used = set(re.findall(r"\\(halSeqmnist[A-Z][A-Za-z]*)", text))
    assert used and used <= set(m), used - set(m)


def test_seqcl_order_that_fails_is_reported_as_failing(tmp_path):
    ctx = make_ctx(tmp_path, seqcl_records(swap=True))
    seqcl_report.tables(ctx)
    assert ctx.macros.values["halSeqclOrderHolds"] == "does not hold"
    assert ctx.macros.values["halSeqclOrderDerppErVerdict"] == "below"


def test_published_numbers_appear_only_beside_runs_on_seq_cifar10(tmp_path):
    cifar = [f"cifar10 {2 * t},{2 * t + 1}" for t in range(2)]
    ctx = make_ctx(tmp_path, seqcl_records(tasks=cifar))
    seqcl_report.tables(ctx)
    m = ctx.macros.values
    assert m["halSeqclSequence"] == "Seq-CIFAR-10"
    assert m["halSeqclPublishedFinetuneClass"] == "19.62" and m["halSeqclPublishedDerppTwoZeroZeroClass"] == "64.88"
    assert "Class-IL, Mammoth" in (ctx.tables_dir / "hal_seqcl.tex").read_text()


def test_seqcl_figure(tmp_path):
    ctx = make_ctx(tmp_path, seqcl_records())
    seqcl_report.figures(ctx)
    assert (ctx.png_dir / "hal_seqcl.png").exists()


def test_every_macro_the_seqcl_text_uses_is_generated(tmp_path):
    from pipelines.dag import ROOT

    ctx = make_ctx(tmp_path, seqcl_records())
    seqcl_report.tables(ctx)
    text = (ROOT / "paper" / "sections" / "results_hal_seqcl.tex").read_text()
    used = set(re.findall(r"\\(halSeqcl[A-Z][A-Za-z]*)", text))
    assert used <= set(ctx.macros.values), used - set(ctx.macros.values)


def test_config_defaults_are_the_mini_sleep_variant_of_params_yaml():
    """The CLI without --config runs what the pipeline's mini `sleep` cells run (the artifact aside)."""
    from pipelines.dag import load_profile

    base = load_profile("mini").studies["hal"].config("sleep")
    base["data"] = {k: v for k, v in base["data"].items() if k != "artifact"}
    assert dataclasses.asdict(load_config(base)) == dataclasses.asdict(load_config({}))


def test_every_hal_cell_of_every_profile_is_a_valid_config():
    """Every profile of params.yaml (stand-in profiles too): each hal cell's config passes the contract."""
    from pipelines.dag import PARAMS, _raw, load_profile

    for profile in _raw(str(PARAMS))["profiles"]:
        for name, study in load_profile(profile).studies.items():
            if study.entry.startswith("hal_sleep_wake."):
                for variant in study.variants:
                    CONTRACT.settings_of(study.config(variant), where=f"{profile}:{name}/{variant}")
                    load_config(study.config(variant))
