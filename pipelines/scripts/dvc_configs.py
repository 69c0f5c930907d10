"""Stage ``configs``: one JSON file per (study, variant) and per artifact holding everything that
decides its output: the resolved config (inheritance, profile chain, ``extends``: pipelines/dag.py),
entry, device, threads, and a fingerprint of the code that runs it.

``python -m pipelines.scripts.dvc_configs --profile mini`` writes ``results/<profile>/configs/``:

* ``studies/<study>/<variant>.json`` (all seeds of the variant share it);
* ``artifacts/<name>.json``.

Why a stage: DVC reads a stage's ``params:`` by parsing params.yaml once per stage (about 60 ms
each, 9 s for a 137-stage DAG), and rebuilds the hash of a directory dependency once per stage
that lists it. Here only this stage tracks params.yaml (every key of the profile, seeds and device
included) and the package sources; each cell and artifact depends on its own small file instead,
so ``dvc exp run -S <key>=<value>`` or an edit of one package reruns exactly the cells whose file
changed, and a no-op ``dvc repro`` stays a few seconds.

The stage also refuses to run when the pipeline file of the profile no longer matches params.yaml
(a seed, variant, study or artifact added or removed): DVC's stage list is fixed when it loads
the file, so the fix is to regenerate it (``make dvc-yaml``) and rerun.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from functools import cache
from pathlib import Path
from typing import Any

from circadian_core.config import ConfigError
from circadian_core.record import write_json_atomic
from pipelines.dag import ROOT, Profile, load_profile, resources

CORE_SOURCE = "packages/circadian-core/src/circadian_core"
CELL_RUNNER = "pipelines/scripts/run_cell.py"
ARTIFACT_BUILDER = "pipelines/scripts/build_artifact.py"
# what never belongs to a package's source (as in .dvcignore): bytecode and install metadata
IGNORED_DIRS = {"__pycache__", ".pytest_cache"}
IGNORED_SUFFIXES = (".pyc", ".pyo")


def package_source(entry: str) -> str:
    """'circadian_vision.studies.x:run' -> 'packages/circadian-vision/src/circadian_vision'.

    Outside a full checkout (a workflow copied to a cluster's scratch folder without packages/,
    the packages installed), the installed package's folder, as an absolute path.
    """
    top = entry.split(":", 1)[0].split(".", 1)[0]
    for path in (f"packages/{top.replace('_', '-')}/src/{top}", top):
        if (ROOT / path).is_dir():
            return path
    import importlib.util

    spec = importlib.util.find_spec(top)
    if spec is not None and spec.submodule_search_locations:
        return str(Path(next(iter(spec.submodule_search_locations))).resolve())
    raise FileNotFoundError(
        f"entry {entry!r}: no source folder packages/.../src/{top} or {top}/, and {top!r} is not installed"
    )


@cache
def fingerprint(rel: str, root: Path = ROOT) -> str:
    """sha256 of a source file, or of a folder's files (relative names and contents, sorted),
    without bytecode and install metadata: it changes exactly when the code does."""
    path = root / rel
    h = hashlib.sha256()
    if path.is_file():
        h.update(path.read_bytes())
        return h.hexdigest()
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if name.endswith(IGNORED_SUFFIXES) or name == ".DS_Store":
                continue
            file = Path(dirpath) / name
            h.update(file.relative_to(path).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(file.read_bytes()).digest())
    return h.hexdigest()


def code_of(*paths: str) -> dict[str, str]:
    return {rel: fingerprint(rel) for rel in paths}


def code_sources(profile: Profile) -> list[str]:
    """Every source folder or file some config file of the profile fingerprints (the configs stage's deps)."""
    entries = [s.entry for s in profile.studies.values()] + [a.entry for a in profile.artifacts.values()]
    return sorted({CORE_SOURCE, CELL_RUNNER, ARTIFACT_BUILDER, *(package_source(e) for e in entries)})


def config_dir(profile: Profile) -> str:
    return f"{profile.results}/configs"


def cell_config_path(profile: Profile, study: str, variant: str) -> str:
    """The file a cell's DVC stage depends on (all seeds of the variant share it)."""
    return f"{config_dir(profile)}/studies/{study}/{variant}.json"


def artifact_config_path(profile: Profile, name: str) -> str:
    return f"{config_dir(profile)}/artifacts/{name}.json"


def cell_configs(profile: Profile) -> dict[str, dict[str, Any]]:
    """path -> content of every (study, variant) config file of the profile."""
    out: dict[str, dict[str, Any]] = {}
    for study in profile.studies.values():
        for variant in study.variants:
            out[cell_config_path(profile, study.name, variant)] = {
                "study": study.name,
                "variant": variant,
                "entry": study.entry,
                "device": profile.device,
                "threads": resources(study.resources)["threads"],
                "needs": list(study.needs),
                "config": study.config(variant),
                "code": code_of(CORE_SOURCE, CELL_RUNNER, package_source(study.entry)),
            }
    return out


def artifact_configs(profile: Profile) -> dict[str, dict[str, Any]]:
    """path -> content of every artifact config file of the profile."""
    return {
        artifact_config_path(profile, art.name): {
            "artifact": art.name,
            "entry": art.entry,
            "device": profile.device,
            "threads": resources(art.resources)["threads"],
            "needs": list(art.needs),
            "config": art.config,
            "code": code_of(CORE_SOURCE, ARTIFACT_BUILDER, package_source(art.entry)),
        }
        for art in profile.artifacts.values()
    }


def write_configs(profile: Profile, root: Path = ROOT) -> list[Path]:
    """Rewrite ``results/<profile>/configs/`` from scratch (sorted keys: bytes depend on content only)."""
    target = root / config_dir(profile)
    if target.exists():
        shutil.rmtree(target)
    written = []
    for rel, content in {**cell_configs(profile), **artifact_configs(profile)}.items():
        written.append(write_json_atomic(root / rel, content, sort_keys=True))
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", required=True)
    ap.add_argument(
        "--no-dvc-check", action="store_true", help="skip the pipeline-file freshness check (Snakemake runs)"
    )
    args = ap.parse_args(argv)
    try:
        profile = load_profile(args.profile)
        if not args.no_dvc_check:
            from pipelines.scripts.dvcgen import stale_pipeline

            stale = stale_pipeline(profile.name)
            if stale:
                raise ConfigError(
                    f"{stale} no longer matches params.yaml (a seed, variant, study or artifact was added or "
                    f"removed, or an entry moved): DVC fixed its stage list when it loaded the file. Run "
                    f"`python -m pipelines.scripts.dvcgen` (make dvc-yaml), then the same dvc command again"
                )
        written = write_configs(profile)
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"configs: {len(written)} files in {config_dir(profile)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
