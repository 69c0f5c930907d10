"""A DVC remote round trip on a scratch copy of the workflow: `dvc repro` with cached outputs,
`dvc push` to a local-directory remote, a fresh `git clone`, `dvc pull`; the clone then has the same
bytes, `dvc status` is clean and `dvc repro` runs nothing.

The scratch pipeline is the toy study (tests/toy_study.py) with its own small dvc.yaml whose
outputs are all cached (two run records, the aggregate's tables and macros), so the test does not
depend on how the main dvc.yaml caches artifacts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.workflow_helpers import BIN, make_toy_repo, run

pytestmark = pytest.mark.slow

CELLS = [("plain", 1), ("shrunk", 1)]
GIT = ["git", "-c", "user.name=circadian-test", "-c", "user.email=test@circadian.invalid", "-c", "commit.gpgsign=false"]


def record(variant: str, seed: int) -> str:
    return f"results/toy/runs/toy/{variant}/seed{seed}.json"


AGGREGATE_OUTS = ["results/toy/tables", "paper/generated/toy/tables", "paper/generated/toy/macros.tex",
                  "paper/generated/toy/sections.tex"]


def pipeline() -> dict:
    """dvc.yaml of the scratch repo: one stage per toy cell and the aggregate, every output cached."""
    stages = {
        f"run-{variant}-s{seed}": {
            "cmd": f"python -m pipelines.scripts.run_cell toy {variant} {seed} --profile toy",
            "deps": ["tests/toy_study.py", "pipelines/scripts/run_cell.py"],
            "params": [f"profiles.toy.studies.toy.variants.{variant}", "profiles.toy.studies.toy.base"],
            "outs": [record(variant, seed)],
        }
        for variant, seed in CELLS
    }
    stages["aggregate"] = {
        "cmd": "python -m pipelines.scripts.aggregate --profile toy",
        "deps": ["pipelines/scripts/aggregate.py", "pipelines/reports", *(record(v, s) for v, s in CELLS)],
        "outs": AGGREGATE_OUTS,
    }
    return {"stages": stages}


def outputs(repo: Path) -> dict[str, bytes]:
    """Every file the pipeline wrote, path -> bytes."""
    files = {}
    for out in [*(record(v, s) for v, s in CELLS), *AGGREGATE_OUTS]:
        path = repo / out
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file():
                files[str(f.relative_to(repo))] = f.read_bytes()
    return files


def local_config(repo: Path, site_cache: Path) -> None:
    """.dvc/config.local (not in git): DVC's site cache (state, indexes) in the scratch folder."""
    (repo / ".dvc" / "config.local").write_text(f"[core]\n    site_cache_dir = {site_cache}\n")


def dvc(repo: Path, *args: str) -> str:
    return run([str(BIN / "dvc"), *args], repo).stdout


def test_push_clone_pull_gives_the_same_outputs_and_a_clean_noop_repro(tmp_path):
    repo = make_toy_repo(tmp_path / "origin")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    toy = params["profiles"]["toy"]["studies"]["toy"]
    toy["seeds"] = sorted({s for _, s in CELLS})
    toy["base"]["n_tasks"] = 2  # seconds, not tens of seconds, on a busy machine
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (repo / "dvc.yaml").write_text(yaml.safe_dump(pipeline(), sort_keys=False))
    remote = tmp_path / "remote"
    dvc(repo, "init", "-q")
    # what `dvc remote add -d store REMOTE` and `dvc config core.analytics false` would write
    (repo / ".dvc" / "config").write_text(f"[core]\n    remote = store\n    analytics = false\n['remote \"store\"']\n    url = {remote}\n")
    local_config(repo, tmp_path / "site-cache")
    assert dvc(repo, "config", "--list").count("store") >= 2  # DVC reads the remote back

    first = dvc(repo, "repro")
    assert all(f"Running stage '{name}'" in first for name in pipeline()["stages"]), first
    made = outputs(repo)
    assert len(made) >= len(CELLS) + 3, sorted(made)
    run([*GIT, "add", "-A"], repo)
    run([*GIT, "commit", "-q", "-m", "toy pipeline and its dvc.lock"], repo)
    tracked = run(["git", "ls-files"], repo).stdout.split()
    assert "dvc.lock" in tracked and not set(made) & set(tracked), "outputs must reach the clone through DVC, not git"
    pushed = dvc(repo, "push")
    assert "pushed" in pushed and any(remote.rglob("*")), pushed

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    local_config(clone, tmp_path / "site-cache-clone")
    assert not (clone / ".dvc" / "cache").exists() and not any((clone / p).exists() for p in made)
    dvc(clone, "pull")
    assert outputs(clone) == made, "pulled outputs differ from the pushed ones"
    status = dvc(clone, "status")
    assert "Data and pipelines are up to date" in status, status
    assert "in sync" in dvc(clone, "status", "--cloud"), "cache and remote differ"
    again = dvc(clone, "repro")
    assert "Running stage" not in again, again
    assert outputs(clone) == made
    shutil.rmtree(tmp_path, ignore_errors=True)
