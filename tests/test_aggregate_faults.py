"""Issue 16, points 1, 3 and 7: aggregate refuses records that are not their cell's current result,
writes all-or-nothing, and creates files with the usual mode.

Each test provokes the fault on the toy profile's real records (tests/conftest.py: toy_root).
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from circadian_core.contract import Contract, Metric
from circadian_core.record import read_record, write_json_atomic
from pipelines.dag import Cell
from pipelines.scripts import aggregate
from pipelines.scripts.aggregate import RecordError, check_record


def _edit(path: Path, change) -> None:
    rec = read_record(path)
    change(rec)
    write_json_atomic(path, rec)


def _outputs(root: Path) -> dict[str, bytes]:
    """Every file aggregate writes (and nothing else), by relative path."""
    found = {}
    for folder in ("results/toy/tables", "paper/generated/toy"):
        for p in sorted((root / folder).rglob("*")):
            if p.is_file():
                found[str(p.relative_to(root))] = p.read_bytes()
    return found


def _leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob(".*") if ".staging" in p.name or ".replaced" in p.name]


# ---- 1. every record is checked before anything is computed ------------------------------------
def test_clean_records_aggregate(toy_root):
    assert aggregate.main([]) == 0
    summary = pd.read_csv(toy_root.root / "results/toy/tables/summary.csv")
    assert set(summary["n"]) == {2}


def test_a_seed_copied_to_another_seeds_path_is_refused(toy_root, capsys):
    """Seed 1 saved as seed 2: before, n stayed 2 and the mean silently changed."""
    toy_root.run(2).write_bytes(toy_root.run(1).read_bytes())
    assert aggregate.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "results/toy/runs/toy/plain/seed2.json" in err and "toy/plain/seed1" in err and "rerun its cell" in err
    assert not (toy_root.root / "results/toy/tables").exists()


def test_a_record_of_another_study_or_variant_is_refused(toy_root):
    toy_root.run(1).write_bytes(toy_root.run(1, "shrunk").read_bytes())
    with pytest.raises(RecordError, match=r"of toy/shrunk/seed1 but sits at the path of toy/plain/seed1"):
        aggregate.load_records(toy_root.profile())


def test_an_older_schema_version_is_refused(toy_root):
    _edit(toy_root.run(1), lambda r: r.update(schema_version=1))
    with pytest.raises(RecordError, match=r"seed1.json: record schema version 1, the current one is 2"):
        aggregate.load_records(toy_root.profile())


def test_a_stale_config_is_refused_naming_the_key(toy_root):
    _edit(toy_root.run(2, "shrunk"), lambda r: r["config"].update(shrink=0.4))
    with pytest.raises(RecordError, match=r"shrunk/seed2.json: its config is not .* at shrink \(record: 0.4, params.yaml: 0.5\)"):
        aggregate.load_records(toy_root.profile())


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda m: m.update(acc="high"), r"metric 'acc' is 'high', not a finite number"),
        (lambda m: m.update(acc=None), r"metric 'acc' is None, but the contract does not declare it nullable"),
        (lambda m: m.update(accuracy=m.pop("acc")), r"metric 'accuracy' is not declared"),
        (lambda m: m.clear(), r"metric 'acc' is missing"),
    ],
    ids=["string", "null", "renamed", "empty"],
)
def test_metrics_the_contract_refuses(toy_root, change, message):
    _edit(toy_root.run(1), lambda r: change(r["metrics"]))
    with pytest.raises(RecordError, match=message) as info:
        aggregate.load_records(toy_root.profile())
    assert "seed1.json" in str(info.value) and "contract 'toy'" in str(info.value)


def test_a_record_of_an_older_contract_version_is_refused(toy_root):
    _edit(toy_root.run(1), lambda r: r.update(contract_version=0))
    with pytest.raises(RecordError, match="contract 'toy' version 0, the code declares version 1"):
        aggregate.load_records(toy_root.profile())


def test_a_truncated_record_is_one_clear_error(toy_root, capsys):
    path = toy_root.run(1)
    path.write_bytes(path.read_bytes()[:100])
    assert aggregate.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a valid run record" in err and "delete it and rerun" in err


def test_every_bad_record_is_counted_in_the_one_error(toy_root):
    for seed in (1, 2):
        _edit(toy_root.run(seed), lambda r: r.update(schema_version=1))
    with pytest.raises(RecordError, match=r"\(1 more record\(s\) fail the same checks\)"):
        aggregate.load_records(toy_root.profile())


def _cell_record(metrics):
    return {"study": "s", "variant": "v", "seed": 1, "schema_version": 2, "contract_version": 1,
            "config": {}, "metrics": metrics}


def test_a_declared_nullable_metric_may_be_null_and_nothing_else():
    contract = Contract("s", 1, settings=None, metrics=(Metric("acc", "a"), Metric("width", "w", nullable=True)))
    cell = Cell("s", "v", 1)
    check_record(_cell_record({"acc": 0.5, "width": None}), "x.json", cell=cell, config={}, contract=contract)
    with pytest.raises(RecordError, match="'acc' is None"):
        check_record(_cell_record({"acc": None, "width": 3}), "x.json", cell=cell, config={}, contract=contract)
    with pytest.raises(RecordError, match="'width' is 'n/a'"):
        check_record(_cell_record({"acc": 0.5, "width": "n/a"}), "x.json", cell=cell, config={}, contract=contract)


def test_without_a_contract_metrics_must_still_be_finite_numbers():
    cell = Cell("s", "v", 1)
    check_record(_cell_record({"a": 1.0, "b": {"c": None}}), "x.json", cell=cell, config={}, contract=None)
    with pytest.raises(RecordError, match=r"x.json: metric 'b.c' is '0.9', not a finite number"):
        check_record(_cell_record({"a": 1.0, "b": {"c": "0.9"}}), "x.json", cell=cell, config={}, contract=None)


# ---- 3. all-or-nothing: a failure leaves the previous outputs exactly as they were --------------
def test_a_full_disk_midway_leaves_the_previous_outputs(toy_root, monkeypatch):
    assert aggregate.main([]) == 0
    before = _outputs(toy_root.root)
    assert "paper/generated/toy/macros.tex" in before and "results/toy/tables/runs.csv" in before
    calls = {"n": 0}
    real = pd.DataFrame.to_csv

    def full_disk(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # runs.csv is written, summary.csv hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    _edit(toy_root.run(1), lambda r: r["metrics"].update(acc=0.123))  # new results that must not half-land
    _edit(toy_root.run(2), lambda r: r["metrics"].update(acc=0.125))
    with pytest.raises(OSError, match="No space left"):
        aggregate.run(toy_root.profile())
    assert _outputs(toy_root.root) == before
    assert _leftovers(toy_root.root) == []


def test_a_failing_report_leaves_the_previous_outputs(toy_root, monkeypatch):
    assert aggregate.main([]) == 0
    before = _outputs(toy_root.root)

    class Broken:
        STUDIES = ("toy",)

        @staticmethod
        def tables(ctx):
            ctx.write_table("half", "\\begin{table}")
            raise KeyError("a report bug")

    monkeypatch.setattr(aggregate, "report_modules", lambda: [Broken])
    assert aggregate.main([]) == 1
    assert _outputs(toy_root.root) == before
    assert _leftovers(toy_root.root) == []


def test_a_first_run_that_fails_leaves_nothing_that_looks_finished(toy_root, monkeypatch):
    monkeypatch.setattr(aggregate, "metrics_tree", lambda summary: 1 / 0)
    assert aggregate.main([]) == 1
    assert _outputs(toy_root.root) == {}
    assert _leftovers(toy_root.root) == []


def test_a_killed_run_s_leftovers_are_cleared_by_the_next(toy_root):
    stale = toy_root.root / "results/toy/.tables.staging"
    stale.mkdir(parents=True)
    (stale / "runs.csv").write_text("trunc")
    assert aggregate.main([]) == 0
    assert _leftovers(toy_root.root) == []
    assert "trunc" not in (toy_root.root / "results/toy/tables/runs.csv").read_text()


def test_figures_are_swapped_in_only_when_complete(toy_root, monkeypatch):
    from pipelines.scripts import figures

    assert figures.main([]) == 0
    pdf = toy_root.root / "paper/generated/toy/figures/toy_acc.pdf"
    png = toy_root.root / "results/toy/figures/toy_acc.png"
    before = pdf.read_bytes(), png.read_bytes()

    class Broken:
        STUDIES = ("toy",)

        @staticmethod
        def figures(ctx):
            import matplotlib.pyplot as plt

            ctx.save_figure(plt.figure(), "half")
            raise RuntimeError("a plotting bug")

    monkeypatch.setattr(figures, "report_modules", lambda: [Broken])
    assert figures.main([]) == 1
    assert (pdf.read_bytes(), png.read_bytes()) == before
    assert not (toy_root.root / "results/toy/figures/half.png").exists()
    assert _leftovers(toy_root.root) == []


# ---- 7. files get the usual mode (0644 under umask 022), not 0600 ------------------------------
def test_records_and_aggregate_outputs_get_the_usual_mode(tmp_path, monkeypatch):
    from pipelines import dag
    from tests.workflow_helpers import make_toy_records

    old = os.umask(0o022)
    try:
        results = make_toy_records(tmp_path)
        monkeypatch.setattr(dag, "PARAMS", tmp_path / "params.yaml")
        monkeypatch.setattr(aggregate, "ROOT", tmp_path)
        from tests import toy_report

        monkeypatch.setattr(aggregate, "report_modules", lambda: [toy_report])
        assert aggregate.main([]) == 0
    finally:
        os.umask(old)
    files = [*results.rglob("seed*.json"), *(tmp_path / "results/toy/tables").iterdir(),
             *(tmp_path / "paper/generated/toy").rglob("*.tex")]
    assert len(files) >= 4 + 4 + 3
    modes = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {"0o644"}, modes
    assert json.loads((tmp_path / "results/toy/tables/metrics.json").read_text())["toy"]["plain"]["acc"] > 0.5
