"""A scratch git + DVC repository of the toy workflow for the DVC and Snakemake tests.

Two profiles (``toy``, the default, and ``big``, which inherits it with a third seed), one cheap
artifact the study needs, and a second study whose base ``extends`` the first one's, so every
mechanism DVC users touch (profiles, params, artifacts in the cache, experiments, metrics and
plots) runs for real in seconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.workflow_helpers import BIN, ROOT, make_toy_repo, run

DVC_TOY_PARAMS = """\
profile: toy
profiles:
  toy:
    device: cpu
    artifacts:
      toy_prior:
        entry: tests.toy_artifact:build_prior
        out: results/toy/artifacts/prior.json
        config: {classes: 10}
    studies:
      toy:
        entry: tests.toy_study:run
        needs: [toy_prior]
        seeds: [1, 2]
        base: {n_tasks: 5}
        variants:
          plain: {}
          shrunk: {shrink: 0.5}
      toy_copy:
        entry: tests.toy_study:run
        seeds: [1]
        base: {extends: studies.toy.base, shrink: 0.25}
        variants:
          only: {}
  big:
    inherits: toy
    studies:
      toy:
        seeds: [1, 2, 3]
"""

GIT = ["git", "-c", "user.email=test@example.org", "-c", "user.name=test"]


def dvc(repo: Path, *args: str, check: bool = True, timeout: float = 600):
    return run([str(BIN / "dvc"), *args], repo, check=check, timeout=timeout)


def commit(repo: Path, message: str) -> None:
    run([*GIT, "add", "-A"], repo)
    run([*GIT, "commit", "-q", "-m", message], repo)


def make_dvc_toy(dest: Path) -> Path:
    """The toy workflow at ``dest`` as a DVC project (pipelines generated, nothing run), committed."""
    make_toy_repo(dest)
    shutil.copy2(ROOT / "tests" / "toy_artifact.py", dest / "tests" / "toy_artifact.py")
    shutil.copy2(ROOT / ".dvcignore", dest / ".dvcignore")
    (dest / "params.yaml").write_text(DVC_TOY_PARAMS)
    (dest / ".gitignore").write_text("/results/\n/paper/generated/\n/paper/build/\n.snakemake/\n__pycache__/\n")
    run([str(BIN / "python"), "-m", "pipelines.scripts.dvcgen"], dest)
    dvc(dest, "init", "-q")
    dvc(dest, "config", "core.analytics", "false")
    shutil.copytree(ROOT / ".dvc" / "plots", dest / ".dvc" / "plots")
    commit(dest, "toy workflow")
    return dest


def lock_outs(repo: Path, lock: str = "dvc.lock") -> dict[str, str]:
    """output path -> md5 recorded in a dvc.lock."""
    import yaml

    data = yaml.safe_load((repo / lock).read_text())
    return {o["path"]: o["md5"] for s in data["stages"].values() for o in s.get("outs", [])}


def changed_stages(status_stdout: str) -> set[str]:
    """Stage names `dvc status` reports as changed (``file:stage`` for other pipeline files)."""
    return {
        line.strip().rstrip(":")
        for line in status_stdout.splitlines()
        if line.strip() and not line.startswith(("\t", " ")) and line.rstrip().endswith(":")
    }
