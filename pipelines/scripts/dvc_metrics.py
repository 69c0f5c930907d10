"""Stage ``metrics``: per-study DVC metrics and plot data from the aggregate stage's summary table.

``python -m pipelines.scripts.dvc_metrics --profile mini`` reads ``results/<profile>/tables/summary.csv``
(mean and 95% t-interval per study, variant and metric over seeds) and writes, per study:

* ``results/<profile>/metrics/<study>.json``: ``{variant: {metric: {mean, ci95}}}``, so
  ``dvc metrics show results/mini/metrics/heads.json`` is one readable row and ``dvc metrics diff``
  compares experiments;
* ``results/<profile>/plots/<study>.csv``: one row per (variant, metric) with mean and CI bounds,
  drawn by the ``metric_bars`` template (.dvc/plots/metric_bars.json: one panel per metric, one
  bar per variant and revision), so ``dvc plots diff <exp-a> <exp-b>`` overlays two experiments.

Timings are never metrics (the study contracts forbid them), so nothing here changes between two
runs with the same numbers: files are written with sorted keys and rows in a fixed order.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from circadian_core.config import ConfigError
from circadian_core.record import write_json_atomic
from pipelines.dag import ROOT, Profile, load_profile

if TYPE_CHECKING:  # pandas is imported by the stage only: dvcgen and the configs stage import the paths
    import pandas as pd

PLOT_COLUMNS = ("variant", "metric", "mean", "ci_low", "ci_high", "n")


def metrics_path(profile: Profile, study: str) -> str:
    return f"{profile.results}/metrics/{study}.json"


def plot_path(profile: Profile, study: str) -> str:
    return f"{profile.results}/plots/{study}.csv"


def summary_path(profile: Profile) -> str:
    return f"{profile.tables}/summary.csv"


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def study_metrics(summary: pd.DataFrame, study: str) -> dict[str, dict[str, dict[str, float | None]]]:
    """``{variant: {metric: {mean, ci95}}}`` of one study; a metric without a mean (not applicable
    to that variant) is left out."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    rows = summary[summary["study"] == study].sort_values(["variant", "metric"])
    for row in rows.itertuples(index=False):
        mean = _num(row.mean)
        if mean is None:
            continue
        out.setdefault(str(row.variant), {})[str(row.metric)] = {"mean": mean, "ci95": _num(row.ci95)}
    return out


def study_plot_rows(summary: pd.DataFrame, study: str) -> list[dict[str, Any]]:
    import pandas as pd

    rows = summary[(summary["study"] == study) & summary["mean"].notna()].sort_values(["metric", "variant"])
    return [
        {
            "variant": r.variant,
            "metric": r.metric,
            "mean": repr(float(r.mean)),
            "ci_low": "" if pd.isna(r.ci_low) else repr(float(r.ci_low)),
            "ci_high": "" if pd.isna(r.ci_high) else repr(float(r.ci_high)),
            "n": int(r.n),
        }
        for r in rows.itertuples(index=False)
    ]


def write_study(profile: Profile, summary: pd.DataFrame, study: str, root: Path = ROOT) -> None:
    write_json_atomic(root / metrics_path(profile, study), study_metrics(summary, study), sort_keys=True)
    out = root / plot_path(profile, study)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=PLOT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(study_plot_rows(summary, study))
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", required=True)
    args = ap.parse_args(argv)
    try:
        profile = load_profile(args.profile)
        path = ROOT / summary_path(profile)
        if not path.exists():
            raise FileNotFoundError(f"{path} not found; run the aggregate stage first (dvc repro aggregate)")
        import pandas as pd

        summary = pd.read_csv(path)
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for study in profile.studies:
        write_study(profile, summary, study)
    print(f"metrics: {len(profile.studies)} studies -> {profile.results}/metrics/, {profile.results}/plots/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
