"""Command line: ``python -m hal_sleep_wake`` or ``hal-sleep-wake``.

    hal-sleep-wake --dry-run                                   # the plan of the default (mini) run; nothing loaded
    hal-sleep-wake --set method=derpp --set memory.capacity=500 --dry-run
    hal-sleep-wake --config my.yaml --seed 1 --out runs/hal.json   # one run, one JSON record
    hal-sleep-wake --device cuda --set 'data.sequence=[cifar10]' --set data.classes_per_task=2 --set model.width=64

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
from hal_sleep_wake import __version__
from hal_sleep_wake.config import SCENARIO_PREFIX, load_config

DEVICE_HELP = "auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps"


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


def check_device(device: str) -> str:
    """The device a run would use; one clear error for a name torch does not know or a device not here.

    ``auto`` and ``cpu`` need no torch (the dry run stays import-free); anything else asks torch.
    """
    if device in ("auto", "cpu"):
        return device
    if device.split(":", 1)[0] == "gpu":
        raise ConfigError(f"--device {device}: unknown device; use cuda (NVIDIA), mps (Apple) or auto")
    from circadian_core.device import pick_device

    try:
        return pick_device(device)
    except (ValueError, RuntimeError) as err:
        raise ConfigError(f"--device {device}: {err}") from None


def _print_record(record: Any, out: Path | None) -> None:
    for view in record.info["views"]:
        p = SCENARIO_PREFIX[view["view"]]
        print(f"\n{view['view']}-incremental accuracy matrix ({view['scenario']}; row i: after task i)")
        for row in view["matrix"]:
            print("  " + " ".join(f"{a:6.3f}" for a in row))
        m = record.metrics
        parts = [f"ACC {m[f'{p}_acc']:.3f}"]
        if m[f"{p}_bwt"] is not None:
            parts += [f"BWT {m[f'{p}_bwt']:+.3f}", f"forgetting {m[f'{p}_forgetting']:.3f}",
                      f"learned {m[f'{p}_learned']:.3f}"]
        print("  " + "  ".join(parts))
    rate = record.timings.get("wake_images_per_s")
    print(f"\n{'wake ' + format(rate, '.0f') + ' new images/s; ' if rate else ''}{record.timings['wall_s']:.1f}s"
          + (f" -> {out}" if out else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hal-sleep-wake", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"hal-sleep-wake {__version__}")
    ap.add_argument("--config", help="YAML/JSON file of config keys (default: the mini setting)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one dotted key")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help=DEVICE_HELP)
    ap.add_argument("--out", help="write the run record (JSON) here")
    ap.add_argument("--dry-run", action="store_true", help="print the plan; load no data, build no model")
    args = ap.parse_args(argv)
    try:
        if args.seed < 0:
            raise ConfigError(f"--seed {args.seed}: use a non-negative integer")
        cfg = load_config(deep_merge(_read_config(args.config), _override(args.set)))
        device = check_device(args.device)
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
                              seed=args.seed, out=out or Path(tmp) / "record.json", device=device)
    except (ConfigError, DatasetUnavailableError, FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _print_record(record, out)
    return 0
