"""Command line: ``python -m hal_sleep_wake`` or ``hal-sleep-wake``.

    hal-sleep-wake --dry-run                                   # the plan of the default (mini) run; nothing loaded
    hal-sleep-wake --set method=ewc --set sleep.scale=0.5 --dry-run
    hal-sleep-wake --config my.yaml --seed 1 --out runs/hal.json   # one run, one JSON record
    hal-sleep-wake --device cuda --set 'data.sequence=[cifar10, cifar100]' --set model.width=64

``--config`` is a YAML/JSON mapping with the keys of :class:`hal_sleep_wake.config.HALConfig` (e.g. one
study's ``base`` block of params.yaml merged with a variant); ``--set KEY=VALUE`` overrides one
dotted key (the value is read as YAML). Without ``--config`` the defaults are the mini setting,
loading Split-Digits from scikit-learn. The pipeline runs the same study function per DAG cell
(``python -m pipelines.scripts.run_cell hal <variant> <seed>``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from circadian_core.config import ConfigError, deep_merge
from hal_sleep_wake.config import SCENARIO_PREFIX, load_config


def _read_config(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"--config {path}: no such file")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as err:
        raise ConfigError(f"--config {path}: cannot parse it ({err}); fix the file") from err
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def _override(pairs: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: use KEY=VALUE, e.g. --set sleep.scale=0.5")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hal-sleep-wake", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="YAML/JSON file of config keys (default: the mini setting)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one dotted key")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    ap.add_argument("--out", help="write the run record (JSON) here")
    ap.add_argument("--dry-run", action="store_true", help="print the plan; load no data, build no model")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(deep_merge(_read_config(args.config), _override(args.set)))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from hal_sleep_wake.plan import plan_text

    print(plan_text(cfg))
    if args.dry_run:
        return 0
    from circadian_core.datasets import DatasetUnavailableError
    from circadian_core.runner import run_cell

    out = Path(args.out) if args.out else None
    try:
        with tempfile.TemporaryDirectory() as tmp:  # without --out the record is shown, not kept
            record = run_cell("hal_sleep_wake.studies:run", dataclasses.asdict(cfg), study="hal", variant=cfg.method,
                              seed=args.seed, out=out or Path(tmp) / "record.json", device=args.device)
    except (ConfigError, DatasetUnavailableError, FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for scenario, matrix in record.info["accuracy_matrix"].items():
        p = SCENARIO_PREFIX[scenario]
        print(f"\n{scenario}-incremental accuracy matrix (row i: after task i)")
        for row in matrix:
            print("  " + " ".join(f"{a:6.3f}" for a in row))
        m = record.metrics
        print(f"  ACC {m[f'{p}_acc']:.3f}  BWT {m[f'{p}_bwt']:+.3f}  forgetting {m[f'{p}_forgetting']:.3f}")
    print(f"\nwake {record.metrics['wake_images_per_s']:.0f} images/s; {record.timings['wall_s']:.1f}s"
          + (f" -> {out}" if out else ""))
    return 0
