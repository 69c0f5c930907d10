"""Aggregate every run record of the profile into tidy tables, LaTeX tables and macros.

``python -m pipelines.scripts.aggregate [--profile mini]`` writes

* results/<profile>/tables/{runs,summary,macros}.csv, metrics.json and each report's own CSVs;
* paper/generated/<profile>/tables/*.tex, macros.tex and sections.tex.

Every record is checked before a number is computed (:func:`check_record`): its study, variant and
seed match its path, its config is the cell's config in params.yaml, its schema version is current
and its study's contract accepts its metrics. Everything is written into temporary siblings and
swapped into place only when complete (:mod:`pipelines.scripts.staging`), so a failure (a full disk,
a failing report) leaves the previous outputs as they were.

Statistics per (study, variant, metric) over seeds: n, mean, std (ddof=1) and the 95% Student-t
interval of :func:`circadian_core.stats.t_interval` (the one interval of tables, macros and figures).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from circadian_core.config import ConfigError
from circadian_core.contract import Contract, contract_for
from circadian_core.record import SCHEMA_VERSION, read_record, write_json_atomic
from circadian_core.stats import t_interval
from pipelines.dag import ROOT, Cell, Profile
from pipelines.reports import Macros, ReportContext, report_modules
from pipelines.scripts.errors import InputError, profile_main
from pipelines.scripts.staging import Staging

SUMMARY_COLUMNS = ["study", "variant", "metric", "n", "mean", "std", "ci95", "ci_low", "ci_high"]


class RecordError(InputError):
    """A run record that must not be aggregated; the message names the file and the fix."""


def _flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """The first key path where two JSON-like values differ, or None if they are equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{where}.{key}" if where else str(key)
            if key not in a or key not in b:
                return f"{sub} (record: {a.get(key, '<absent>')!r}, params.yaml: {b.get(key, '<absent>')!r})"
            found = _first_difference(a[key], b[key], sub)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    same = a is b if isinstance(a, bool) or isinstance(b, bool) else a == b
    if same:
        return None
    return f"{where or '(whole config)'} (record: {a!r}, params.yaml: {b!r})"


def _plain_metrics_problem(metrics: dict[str, Any]) -> str | None:
    """Without a contract: every metric must be a finite number or null."""
    for name, value in _flatten(metrics).items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"metric {name!r} is {value!r}, not a finite number"
    return None


def check_record(
    record: dict[str, Any], path: str | Path, *, cell: Cell, config: dict[str, Any], contract: Contract[Any, Any] | None
) -> None:
    """Refuse a record that is not the current, complete result of ``cell``; :class:`RecordError` names the fix.

    ``config`` is the cell's config from params.yaml; ``contract`` its study's contract (or None
    when the study declares none: then every metric must still be a finite number or null).
    """
    rerun = f"delete {path} and rerun its cell (snakemake {path}, or dvc repro)"
    version = record.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RecordError(f"{path}: record schema version {version}, the current one is {SCHEMA_VERSION}: {rerun}")
    found = (record.get("study"), record.get("variant"), record.get("seed"))
    if found != (cell.study, cell.variant, cell.seed) or isinstance(record.get("seed"), bool):
        raise RecordError(
            f"{path}: the record is of {found[0]}/{found[1]}/seed{found[2]} but sits at the path of "
            f"{cell.study}/{cell.variant}/seed{cell.seed} (copied or moved by hand?): {rerun}"
        )
    diff = _first_difference(record.get("config"), json.loads(json.dumps(config)))
    if diff:
        raise RecordError(f"{path}: its config is not the cell's config in params.yaml, first at {diff}: {rerun}")
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        raise RecordError(f"{path}: metrics is {type(metrics).__name__}, not a mapping: {rerun}")
    if contract is None:
        problem = _plain_metrics_problem(metrics)
        if problem:
            raise RecordError(f"{path}: {problem}: {rerun}")
        return
    try:
        contract.parse(record, where=str(path))
    except ConfigError as err:
        raise RecordError(f"{err} (contract {contract.name!r} of study {cell.study!r}); or: {rerun}") from err


def _contract(profile: Profile, study: str) -> Contract[Any, Any] | None:
    entry = profile.studies[study].entry
    try:
        return contract_for(entry)
    except ImportError as err:
        raise ConfigError(
            f"cannot import study {study!r}'s entry {entry!r} to read its contract ({err}); install its package "
            "(make setup)"
        ) from err


def load_records(profile: Profile) -> list[dict[str, Any]]:
    """The checked records of every cell of the profile's DAG.

    A missing record is a ``FileNotFoundError`` naming the command that makes it; a record that
    fails :func:`check_record` a :class:`RecordError` naming the first bad file (and how many more).
    """
    records = []
    missing: list[str] = []
    bad: list[str] = []
    contracts: dict[str, Contract[Any, Any] | None] = {}
    for cell in profile.cells():
        path = profile.run_path(cell.study, cell.variant, cell.seed)
        p = ROOT / path
        if not p.exists():
            missing.append(path)
            continue
        if cell.study not in contracts:
            contracts[cell.study] = _contract(profile, cell.study)
        try:
            rec = read_record(p)
            check_record(rec, path, cell=cell, config=profile.studies[cell.study].config(cell.variant),
                         contract=contracts[cell.study])
        except (RecordError, ValueError) as err:
            bad.append(str(err))
            continue
        records.append(rec)
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} run record(s) missing, e.g. {missing[0]}; run them first "
            f"(snakemake {missing[0]}, or dvc repro)"
        )
    if bad:
        more = f" ({len(bad) - 1} more record(s) fail the same checks)" if len(bad) > 1 else ""
        raise RecordError(bad[0] + more)
    return records


def tidy(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Long table: one row per (study, variant, seed, metric); null metrics become NaN."""
    rows = []
    for r in records:
        for metric, value in _flatten(r["metrics"]).items():
            if isinstance(value, bool) or not isinstance(value, (int, float, type(None))):
                continue
            rows.append(
                {
                    "study": r["study"],
                    "variant": r["variant"],
                    "seed": r["seed"],
                    "metric": metric,
                    "value": np.nan if value is None else float(value),
                }
            )
    return pd.DataFrame(rows, columns=["study", "variant", "seed", "metric", "value"])


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """n, mean, std and the 95% t-interval (:func:`circadian_core.stats.t_interval`) per (study, variant, metric)."""
    rows = []
    for (study, variant, metric), values in runs.groupby(["study", "variant", "metric"], sort=False)["value"]:
        iv = t_interval(values)
        rows.append({"study": study, "variant": variant, "metric": metric, **iv.to_json()})
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    out["n"] = out["n"].astype(int)
    return out


def metrics_tree(summary: pd.DataFrame) -> dict[str, Any]:
    """{study: {variant: {metric: mean}}} for `dvc metrics show` / `dvc metrics diff`."""
    tree: dict[str, Any] = {}
    for row in summary.itertuples(index=False):
        tree.setdefault(row.study, {}).setdefault(row.variant, {})[row.metric] = row.mean
    return tree


def build_context(profile: Profile, *, figures: bool = False) -> ReportContext:
    """Checked records, tidy runs and their summary, with the profile's output folders."""
    records = load_records(profile)
    runs = tidy(records)
    return ReportContext(
        profile=profile.name,
        runs=runs,
        summary=summarize(runs),
        records=records,
        macros=Macros(),
        tables_dir=ROOT / profile.generated_tables,
        csv_dir=ROOT / profile.tables,
        figures_dir=ROOT / profile.generated_figures if figures else None,
        png_dir=ROOT / profile.figures if figures else None,
    )


def write_outputs(ctx: ReportContext, profile: Profile) -> list[str]:
    """Run every report of the profile's studies into ``ctx``; returns the results sections they fill."""
    ctx.write_csv("runs", ctx.runs)
    ctx.write_csv("summary", ctx.summary)
    ctx.text("profile", profile.name, source="params.yaml profile")
    ctx.macro(("total", "runs"), len(ctx.records), "d", source="number of run records")
    sections = []
    for mod in report_modules():
        if any(ctx.has(s) for s in mod.STUDIES):
            mod.tables(ctx)
            sections.append(getattr(mod, "SECTION", f"results_{mod.__name__.rsplit('.', 1)[-1]}"))
    ctx.write_csv("macros", ctx.macros.frame())
    write_json_atomic(ctx.csv_dir / "metrics.json", metrics_tree(ctx.summary))
    return sections


def sections_tex(sections: list[str]) -> str:
    return "% Generated by pipelines/scripts/aggregate.py: the results sections of the reports that ran.\n" + "".join(
        f"\\input{{sections/{name}}}\n" for name in sections
    )


def run(profile: Profile) -> ReportContext:
    """Check, aggregate and write everything of ``profile``; all-or-nothing (see the module docstring)."""
    ctx = build_context(profile)
    with Staging() as stage:
        ctx.tables_dir = stage.folder(ROOT / profile.generated_tables)
        ctx.csv_dir = stage.folder(ROOT / profile.tables)
        sections = write_outputs(ctx, profile)
        stage.file(ROOT / profile.sections_tex).write_text(sections_tex(sections), encoding="utf-8")
        stage.file(ROOT / profile.macros_tex).write_text(ctx.macros.render(), encoding="utf-8")
    ctx.tables_dir, ctx.csv_dir = ROOT / profile.generated_tables, ROOT / profile.tables
    return ctx


def _stage(profile: Profile) -> int:
    ctx = run(profile)
    print(f"aggregated {len(ctx.records)} runs into {len(ctx.written)} files and {len(ctx.macros.values)} macros "
          f"-> {profile.tables}, {profile.generated}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return profile_main(__doc__, _stage, argv)


if __name__ == "__main__":
    sys.exit(main())
