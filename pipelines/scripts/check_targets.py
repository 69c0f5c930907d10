"""Check a profile's headline numbers against pipelines/targets.yaml (a scientific regression test).

``python -m pipelines.scripts.check_targets [--profile mini]`` reads the tidy runs the aggregate
stage wrote (results/<profile>/tables/runs.csv), computes every target's statistic with the
project's one t-interval and paired test (circadian_core.stats), writes
results/<profile>/targets.json and exits 1 naming every target that moved beyond its tolerance.

A target is ``{study, variant, metric, expected, tolerance}``, optionally ``against: <variant>``
(then the statistic is the mean paired difference ``variant - against`` over common seeds) and a
``note`` saying why it is a headline. A one-sided check (the smoke profile's "beats chance by a
margin") gives ``at_least`` and/or ``at_most`` instead of ``expected`` and ``tolerance``. Published numbers a profile cannot match never go here: they
stay in pipelines/reports/published.yaml and the paper quotes them as published.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from circadian_core.config import ConfigError, from_dict
from circadian_core.record import write_json_atomic
from circadian_core.stats import paired_difference, t_interval
from pipelines.dag import ROOT, load_profile

TARGETS = ROOT / "pipelines" / "targets.yaml"


@dataclasses.dataclass(frozen=True)
class Target:
    study: str
    variant: str
    metric: str
    expected: float | None = None
    tolerance: float | None = None
    against: str | None = None
    note: str = ""
    at_least: float | None = None  # one-sided bounds instead of expected +- tolerance
    at_most: float | None = None

    def holds(self, observed: float) -> bool:
        if not math.isfinite(observed):
            return False
        if self.expected is not None and abs(observed - self.expected) > self.tolerance:  # type: ignore[operator]
            return False
        return not ((self.at_least is not None and observed < self.at_least)
                    or (self.at_most is not None and observed > self.at_most))

    def describe(self) -> str:
        """What the target asks, e.g. ``0.9 +- 0.01`` or ``>= 0.2``."""
        parts = [f"{self.expected} +- {self.tolerance}"] if self.expected is not None else []
        parts += [f">= {self.at_least}"] if self.at_least is not None else []
        parts += [f"<= {self.at_most}"] if self.at_most is not None else []
        return " and ".join(parts)

    @property
    def label(self) -> str:
        vs = f" - {self.against}" if self.against else ""
        return f"{self.study}/{self.variant}{vs}/{self.metric}"


@dataclasses.dataclass(frozen=True)
class Outcome:
    target: Target
    observed: float
    n: int
    ci95: float

    @property
    def ok(self) -> bool:
        return self.target.holds(self.observed)

    def to_json(self) -> dict[str, Any]:
        delta = None if self.target.expected is None else self.observed - self.target.expected
        return {**dataclasses.asdict(self.target), "observed": self.observed, "n": self.n, "ci95": self.ci95,
                "delta": delta, "ok": self.ok}


def load_targets(profile: str, path: Path = TARGETS) -> list[Target]:
    """The targets of ``profile`` (a missing profile key means none); every entry strictly checked."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get(profile) or []
    targets = [from_dict(Target, e, where=f"{path.name}: {profile}[{i}]") for i, e in enumerate(entries)]
    for t in targets:
        if (t.expected is None) != (t.tolerance is None):
            raise ConfigError(f"{path.name}: {t.label}: give expected and tolerance together")
        if t.expected is None and t.at_least is None and t.at_most is None:
            raise ConfigError(f"{path.name}: {t.label}: give expected and tolerance, or at_least / at_most")
        if t.tolerance is not None and not t.tolerance >= 0:
            raise ConfigError(f"{path.name}: {t.label}: tolerance must be >= 0, got {t.tolerance}")
    return targets


def _by_seed(runs: pd.DataFrame, study: str, variant: str, metric: str) -> dict[int, float]:
    rows = runs[(runs["study"] == study) & (runs["variant"] == variant) & (runs["metric"] == metric)]
    return {int(s): float(v) for s, v in zip(rows["seed"], rows["value"])}


def evaluate(target: Target, runs: pd.DataFrame) -> Outcome:
    """The target's statistic on ``runs`` (long: study, variant, seed, metric, value)."""
    values = _by_seed(runs, target.study, target.variant, target.metric)
    if not values:
        raise ConfigError(
            f"target {target.label}: no such results in this profile; fix or remove it in pipelines/targets.yaml"
        )
    if target.against is None:
        iv = t_interval(values.values())
        return Outcome(target, iv.mean, iv.n, iv.ci95)
    base = _by_seed(runs, target.study, target.against, target.metric)
    if not base:
        raise ConfigError(f"target {target.label}: no results for {target.against!r}; fix pipelines/targets.yaml")
    d = paired_difference(values, base)
    return Outcome(target, d.mean, d.n, d.ci95)


def check(profile: str, runs: pd.DataFrame, path: Path = TARGETS) -> list[Outcome]:
    return [evaluate(t, runs) for t in load_targets(profile, path)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--profile")
    ap.add_argument("--targets", default=str(TARGETS))
    args = ap.parse_args(argv)
    try:
        profile = load_profile(args.profile)
        runs_csv = ROOT / profile.tables / "runs.csv"
        if not runs_csv.exists():
            raise FileNotFoundError(f"{runs_csv} not found; run the aggregate stage first (snakemake {profile.tables})")
        outcomes = check(profile.name, pd.read_csv(runs_csv), Path(args.targets))
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = ROOT / profile.results / "targets.json"
    write_json_atomic(out, {"profile": profile.name, "targets": [o.to_json() for o in outcomes]})
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"error: target {o.target.label} moved: {o.observed:.4f} (n={o.n}), expected {o.target.describe()}; "
              "if the change is intended, update pipelines/targets.yaml and say why", file=sys.stderr)
    print(f"{len(outcomes) - len(failed)} of {len(outcomes)} targets of profile {profile.name!r} hold -> {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
