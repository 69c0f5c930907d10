"""Build one artifact of the DAG: ``python -m pipelines.scripts.build_artifact NAME``.

An artifact entry is ``fn(config, *, out, device, artifacts)``; it must create ``out`` (a file or a
folder). It is built into a temporary sibling and renamed into place, so a killed build leaves
nothing that looks finished. The artifact's ``resources.threads`` caps its CPU threads
(:func:`circadian_core.runner.set_threads`, as for a cell). A failure is one line on stderr naming
the file or key and the fix; ``--debug`` (or ``CIRCADIAN_DEBUG=1``) adds the traceback.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from circadian_core.config import ConfigError
from circadian_core.runner import set_threads
from circadian_core.seeding import seed_everything
from pipelines.dag import Artifact, Profile, load_profile, resources
from pipelines.scripts import warm
from pipelines.scripts.errors import add_debug_flag, fail
from pipelines.scripts.run_cell import checked_device, checked_entry


def _clear(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def build(profile: Profile, art: Artifact, device: str) -> Path:
    """Build ``art`` into a temporary sibling of its ``out`` and rename it into place; returns ``out``."""
    set_threads(resources(art.resources)["threads"])
    fn = checked_entry(art.entry, f"params.yaml profiles.{profile.name}.artifacts.{art.name}.entry")
    out = Path(art.out)
    tmp = out.with_name(f".{out.name}.building")
    _clear(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    seed_everything(0)
    deps = dict(zip(art.needs, map(Path, profile.artifact_paths(art.needs))))
    try:
        fn(dict(art.config), out=tmp, device=device, artifacts=deps)
        if not tmp.exists():
            raise RuntimeError(f"artifact entry {art.entry} did not create its output {tmp}: fix the entry")
    except BaseException:
        _clear(tmp)
        raise
    _clear(out)
    tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("name")
    ap.add_argument("--profile")
    ap.add_argument("--device")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    inputs: list[str] = []
    warm_rc = warm.delegate("pipelines.scripts.build_artifact", argv)
    if warm_rc is not None:
        return warm_rc
    try:
        profile = load_profile(args.profile)
        if args.name not in profile.artifacts:
            raise ConfigError(
                f"profile {profile.name!r} has no artifact {args.name!r}; artifacts: {', '.join(profile.artifacts)}"
            )
        art = profile.artifacts[args.name]
        inputs = profile.artifact_paths(art.needs)
        key = "--device" if args.device else f"params.yaml profiles.{profile.name}.device"
        device = checked_device(args.device or profile.device, key)
        t0 = time.perf_counter()
        out = build(profile, art, device)
    except Exception as err:  # one line on stderr; the traceback under --debug
        return fail(err, args.debug, inputs, context=f"artifact {args.name}")
    print(f"artifact {args.name} -> {out} ({time.perf_counter() - t0:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
