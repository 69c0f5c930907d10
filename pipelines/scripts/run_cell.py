"""Run one cell of the DAG: ``python -m pipelines.scripts.run_cell STUDY VARIANT SEED``.

Writes results/<profile>/runs/<study>/<variant>/seed<seed>.json (atomically, only on success).
A failure is one line on stderr naming the file or key and the fix; ``--debug`` (or
``CIRCADIAN_DEBUG=1``) adds the traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from circadian_core.config import ConfigError
from circadian_core.device import pick_device
from circadian_core.runner import resolve_entry, run_cell
from circadian_core.seeding import check_seed
from pipelines.dag import Profile, load_profile, resources
from pipelines.scripts import warm
from pipelines.scripts.errors import add_debug_flag, fail


def checked_device(requested: str, key: str) -> str:
    """``requested`` resolved on this machine, or a ConfigError naming where it came from."""
    try:
        return pick_device(requested)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(f"{key}: {err}") from err


def checked_entry(entry: str, key: str) -> Any:
    """The entry's function, or a ConfigError naming the params.yaml key (imports the study's package)."""
    try:
        return resolve_entry(entry)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(f"{key}: {err}") from err
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"{key}: {err}; fix that key in params.yaml") from err


def _device_key(args: argparse.Namespace, profile: Profile) -> str:
    return "--device" if args.device else f"params.yaml profiles.{profile.name}.device"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("study")
    ap.add_argument("variant")
    ap.add_argument("seed", type=int)
    ap.add_argument("--profile", help="profile of params.yaml (default: its `profile` key)")
    ap.add_argument("--device", help="override the profile's device (auto, cpu, cuda, mps, mlx)")
    ap.add_argument("--out", help="record path (default: the DAG's path for this cell)")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    inputs: list[str] = []
    warm_rc = warm.delegate("pipelines.scripts.run_cell", argv)
    if warm_rc is not None:
        return warm_rc
    try:
        profile = load_profile(args.profile)
        if args.study not in profile.studies:
            raise ConfigError(
                f"profile {profile.name!r} has no study {args.study!r}; "
                f"studies: {', '.join(profile.studies)}"
            )
        study = profile.studies[args.study]
        config = study.config(args.variant)
        check_seed(args.seed, f"params.yaml profiles.{profile.name}.studies.{args.study}.seeds")
        if args.seed not in study.seeds:
            print(f"note: seed {args.seed} is not in {args.study}'s seeds {list(study.seeds)}", file=sys.stderr)
        out = Path(args.out or profile.run_path(args.study, args.variant, args.seed))
        inputs = profile.artifact_paths(study.needs)
        artifacts = dict(zip(study.needs, map(Path, inputs)))
        device = checked_device(args.device or profile.device, _device_key(args, profile))
        checked_entry(study.entry, f"params.yaml profiles.{profile.name}.studies.{args.study}.entry")
        workdir = Path(profile.work_dir(args.study, args.variant, args.seed))
        record = run_cell(
            study.entry,
            config,
            study=args.study,
            variant=args.variant,
            seed=args.seed,
            out=out,
            device=device,
            workdir=workdir,
            artifacts=artifacts,
            threads=resources(study.resources)["threads"],
        )
    except Exception as err:  # one line on stderr; the traceback under --debug
        return fail(err, args.debug, inputs, context=f"cell {args.study}/{args.variant}/seed{args.seed}")
    shown = ", ".join(f"{k}={v:.4g}" for k, v in list(record.metrics.items())[:6] if v is not None)
    print(f"{args.study}/{args.variant}/seed{args.seed}: {shown} ({record.timings['wall_s']:.1f}s) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
