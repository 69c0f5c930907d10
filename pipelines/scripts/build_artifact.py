"""Build one artifact of the DAG: ``python -m pipelines.scripts.build_artifact NAME``.

An artifact entry is ``fn(config, *, out, device, artifacts)``; it must create ``out`` (a file or a
folder). It is built into a temporary sibling and renamed into place, so a killed build leaves
nothing that looks finished.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from circadian_core.config import ConfigError
from circadian_core.device import pick_device
from circadian_core.runner import resolve_entry
from circadian_core.seeding import seed_everything
from pipelines.dag import limit_threads, load_profile
from pipelines.scripts import warm


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("name")
    ap.add_argument("--profile")
    ap.add_argument("--device")
    args = ap.parse_args(argv)
    warm_rc = warm.delegate("pipelines.scripts.build_artifact", argv)
    if warm_rc is not None:
        return warm_rc
    try:
        profile = load_profile(args.profile)
        if args.name not in profile.artifacts:
            raise ConfigError(f"profile {profile.name!r} has no artifact {args.name!r}; artifacts: {', '.join(profile.artifacts)}")
        art = profile.artifacts[args.name]
        limit_threads(art.resources)
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(art.out)
    tmp = out.with_name(f".{out.name}.building")
    if tmp.exists():
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    tmp.parent.mkdir(parents=True, exist_ok=True)
    fn = resolve_entry(art.entry)
    seed_everything(0)
    deps = dict(zip(art.needs, map(Path, profile.artifact_paths(art.needs))))
    t0 = time.perf_counter()
    fn(dict(art.config), out=tmp, device=pick_device(args.device or profile.device), artifacts=deps)
    if not tmp.exists():
        print(f"error: artifact entry {art.entry} did not create its output", file=sys.stderr)
        return 1
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    tmp.rename(out)
    print(f"artifact {args.name} -> {out} ({time.perf_counter() - t0:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
