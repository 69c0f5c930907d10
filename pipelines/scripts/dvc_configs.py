"""Stage ``configs``: one JSON file per (study, variant) and per artifact with everything that decides
its output, resolved from params.yaml (inheritance, profile chain, ``extends``) by pipelines/dag.py.

``python -m pipelines.scripts.dvc_configs --profile mini`` writes ``results/<profile>/configs/``:

* ``studies/<study>/<variant>.json``: entry, device, threads and the variant's full config;
* ``artifacts/<name>.json``: entry, device, threads, needs and the artifact's config.

Why a stage: DVC reads a stage's ``params:`` by parsing params.yaml once per stage (about 60 ms
each, 9 s for the mini DAG). Here only this stage tracks params.yaml (every key of the profile,
seeds and device included); each cell and artifact stage depends on its own small file instead,
so ``dvc exp run -S <key>=<value>`` reruns exactly the cells whose resolved config changed.

The stage also refuses to run when the pipeline file of the profile no longer matches params.yaml
(a seed, variant, study or artifact added or removed): DVC's stage list is fixed when it loads
the file, so the fix is to regenerate it (``make dvc-yaml``) and rerun.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from circadian_core.config import ConfigError
from circadian_core.record import write_json_atomic
from pipelines.dag import ROOT, Profile, load_profile, resources


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
