"""Helpers for the repository-level tests: run commands, build a scratch toy copy of the workflow."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

TOY_PARAMS = """\
profile: toy
profiles:
  toy:
    device: cpu
    studies:
      toy:
        entry: tests.toy_study:run
        seeds: [1, 2]
        base: {n_tasks: 5}
        variants:
          plain: {}
          shrunk: {shrink: 0.5}
"""

TOY_SECTION = r"""\subsection{Toy}
Nearest-mean ACC over \toyPlainAccMean{} and \toyShrunkAccMean{} (profile \profile, \totalRuns{} runs).
\generated{tables/toy.tex}
\genfigure{toy_acc}{0.5\linewidth}{Toy accuracy.}
"""


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e.pop("CIRCADIAN_PROFILE", None)
    e["MPLBACKEND"] = "Agg"
    return e


def run(cmd: list[str], cwd: Path, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def make_toy_repo(dest: Path) -> Path:
    """A scratch copy of the workflow (Snakefile, pipelines, paper) with the toy study as its params
    (without pipelines/dvc/: those DVC pipelines belong to the real params.yaml's profiles)."""
    for name in ("Snakefile", "pipelines", "paper", "packages/circadian-core/src"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "generated", "build", "*.egg-info", "dvc"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    (dest / "paper" / "generated").mkdir(exist_ok=True)
    (dest / "tests").mkdir()
    shutil.copy2(ROOT / "tests" / "toy_study.py", dest / "tests" / "toy_study.py")
    shutil.copy2(ROOT / "tests" / "toy_report.py", dest / "pipelines" / "reports" / "toy.py")
    for mod in (dest / "pipelines" / "reports").glob("*.py"):
        if mod.name not in {"__init__.py", "context.py", "toy.py"}:
            mod.unlink()
    (dest / "paper" / "sections" / "results_toy.tex").write_text(TOY_SECTION)
    (dest / "params.yaml").write_text(TOY_PARAMS)
    run(["git", "init", "-q"], dest)
    return dest


def toy_params_file(dest: Path) -> Path:
    """params.yaml of the toy profile at ``dest`` (for in-process tests that point pipelines.dag at it)."""
    path = dest / "params.yaml"
    path.write_text(TOY_PARAMS)
    return path


def make_toy_records(dest: Path) -> Path:
    """Run the toy profile's four cells in this process into ``dest``/results/toy/runs (about 3 s)."""
    from circadian_core.runner import run_cell
    from pipelines.dag import load_profile

    profile = load_profile("toy", toy_params_file(dest))
    for cell in profile.cells():
        run_cell(profile.studies[cell.study].entry, profile.studies[cell.study].config(cell.variant),
                 study=cell.study, variant=cell.variant, seed=cell.seed, device="cpu",
                 out=dest / profile.run_path(cell.study, cell.variant, cell.seed))
    return dest / "results"


def job_counts(stdout: str) -> dict[str, int]:
    block = stdout.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = {}
    for line in block.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def snakemake_outputs(cwd, *extra: str) -> dict[str, str]:
    """output file -> rule, from `snakemake --summary` (the whole DAG of the default target)."""
    proc = run([str(BIN / "snakemake"), "--summary", *extra], cwd)
    rows = [line.split("\t") for line in proc.stdout.splitlines() if "\t" in line]
    header, *body = rows
    i, j = header.index("output_file"), header.index("rule")
    return {r[i]: r[j] for r in body}


def dvc_outputs(stages: dict) -> set[str]:
    outs = set()
    for stage in stages.values():
        for out in [*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])]:
            outs.add(next(iter(out)) if isinstance(out, dict) else out)
    return outs
