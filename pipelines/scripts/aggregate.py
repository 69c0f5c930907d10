"""Aggregate every run record of the profile into tidy tables, LaTeX tables and macros.

``python -m pipelines.scripts.aggregate [--profile mini]`` writes

* results/<profile>/tables/{runs,summary,macros}.csv and each report's own CSVs;
* paper/generated/tables/*.tex and paper/generated/macros.tex.

Statistics per (study, variant, metric) over seeds: n, mean, std (ddof=1), 95% CI half-width
from Student's t, and the CI bounds.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from circadian_core.record import read_record, write_json_atomic
from pipelines.dag import ROOT, Profile, load_profile
from pipelines.reports import Macros, ReportContext, report_modules

GENERATED = Path("paper/generated")


def _flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def load_records(profile: Profile) -> list[dict[str, Any]]:
    """The records of every cell of the profile's DAG; a missing one is an error naming the fix."""
    records = []
    missing = []
    for path in profile.run_paths():
        p = ROOT / path
        if not p.exists():
            missing.append(path)
            continue
        records.append(read_record(p))
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} run record(s) missing, e.g. {missing[0]}; run them first "
            f"(snakemake {missing[0]}, or dvc repro)"
        )
    return records


def tidy(records: list[dict[str, Any]]) -> pd.DataFrame:
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
    """Mean, std and a 95% t-interval per (study, variant, metric)."""

    def one(values: pd.Series) -> pd.Series:
        v = values.dropna().to_numpy(dtype=float)
        n = len(v)
        mean = float(v.mean()) if n else np.nan
        std = float(v.std(ddof=1)) if n > 1 else np.nan
        ci = float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n)) if n > 1 else np.nan
        return pd.Series({"n": n, "mean": mean, "std": std, "ci95": ci, "ci_low": mean - ci, "ci_high": mean + ci})

    if runs.empty:
        return pd.DataFrame(columns=["study", "variant", "metric", "n", "mean", "std", "ci95", "ci_low", "ci_high"])
    out = runs.groupby(["study", "variant", "metric"], sort=False)["value"].apply(one).unstack().reset_index()
    out["n"] = out["n"].astype(int)
    return out


def metrics_tree(summary: pd.DataFrame) -> dict[str, Any]:
    """{study: {variant: {metric: mean}}} for `dvc metrics show` / `dvc metrics diff`."""
    tree: dict[str, Any] = {}
    for row in summary.itertuples(index=False):
        tree.setdefault(row.study, {}).setdefault(row.variant, {})[row.metric] = row.mean
    return tree


def build_context(profile: Profile, *, figures: bool = False) -> ReportContext:
    records = load_records(profile)
    runs = tidy(records)
    return ReportContext(
        profile=profile.name,
        runs=runs,
        summary=summarize(runs),
        records=records,
        macros=Macros(),
        tables_dir=ROOT / GENERATED / "tables",
        csv_dir=ROOT / profile.tables,
        figures_dir=ROOT / GENERATED / "figures" if figures else None,
        png_dir=ROOT / profile.figures if figures else None,
    )


def _fresh(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--profile")
    args = ap.parse_args(argv)
    profile = load_profile(args.profile)
    try:
        ctx = build_context(profile)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _fresh(ctx.tables_dir)
    _fresh(ctx.csv_dir)
    ctx.write_csv("runs", ctx.runs)
    ctx.write_csv("summary", ctx.summary)
    ctx.macro("profile", profile.name, source="params.yaml profile")
    ctx.macro(("total", "runs"), len(ctx.records), "d", source="number of run records")
    sections = []
    for mod in report_modules():
        if any(ctx.has(s) for s in mod.STUDIES):
            mod.tables(ctx)
            sections.append(getattr(mod, "SECTION", f"results_{mod.__name__.rsplit('.', 1)[-1]}"))
    (ROOT / GENERATED).mkdir(parents=True, exist_ok=True)
    (ROOT / GENERATED / "sections.tex").write_text(
        "% Generated by pipelines/scripts/aggregate.py: the results sections of the reports that ran.\n"
        + "".join(f"\\input{{sections/{name}}}\n" for name in sections),
        encoding="utf-8",
    )
    ctx.write_csv("macros", ctx.macros.frame())
    write_json_atomic(ctx.csv_dir / "metrics.json", metrics_tree(ctx.summary))
    macros = ROOT / GENERATED / "macros.tex"
    macros.parent.mkdir(parents=True, exist_ok=True)
    macros.write_text(ctx.macros.render(), encoding="utf-8")
    print(f"aggregated {len(ctx.records)} runs into {len(ctx.written)} files and {len(ctx.macros.values)} macros")
    return 0


if __name__ == "__main__":
    sys.exit(main())
