"""Run one cell of the DAG: ``python -m pipelines.scripts.run_cell STUDY VARIANT SEED``.

Writes results/<profile>/runs/<study>/<variant>/seed<seed>.json (atomically, only on success).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from circadian_core.config import ConfigError
from circadian_core.runner import run_cell
from pipelines.dag import load_profile, resources
from pipelines.scripts import warm


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("study")
    ap.add_argument("variant")
    ap.add_argument("seed", type=int)
    ap.add_argument("--profile", help="profile of params.yaml (default: its `profile` key)")
    ap.add_argument("--device", help="override the profile's device (auto, cpu, cuda, mps, mlx)")
    ap.add_argument("--out", help="record path (default: the DAG's path for this cell)")
    args = ap.parse_args(argv)
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
        if args.seed not in study.seeds:
            print(f"note: seed {args.seed} is not in {args.study}'s seeds {list(study.seeds)}", file=sys.stderr)
        out = Path(args.out or profile.run_path(args.study, args.variant, args.seed))
        artifacts = dict(zip(study.needs, map(Path, profile.artifact_paths(study.needs))))
        workdir = Path(profile.work_dir(args.study, args.variant, args.seed))
        record = run_cell(
            study.entry,
            config,
            study=args.study,
            variant=args.variant,
            seed=args.seed,
            out=out,
            device=args.device or profile.device,
            workdir=workdir,
            artifacts=artifacts,
            threads=resources(study.resources)["threads"],
        )
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    shown = ", ".join(f"{k}={v:.4g}" for k, v in list(record.metrics.items())[:6] if v is not None)
    print(f"{args.study}/{args.variant}/seed{args.seed}: {shown} ({record.timings['wall_s']:.1f}s) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
