"""No-op DVC benchmark: how long `dvc repro` and `dvc status` take when nothing has to run.

    python benchmarks/dvc_noop.py                          # HEAD's pipelines vs the baseline commit
    python benchmarks/dvc_noop.py --baseline fbdad49 --repeats 5 --results /path/to/results

For each revision (``--baseline`` and HEAD, both cloned into a scratch folder) every output of the
root dvc.yaml is put in place - copied from ``--results`` (a ``results/`` folder of a real run)
where it exists there, else a small stand-in file or folder - and ``dvc commit`` records it, so the
pipeline is up to date. Then, interleaving the revisions (the machine's other work hits both
alike), each command runs ``--repeats`` times; wall time and CPU time (user + sys of the dvc
process) are reported as medians. What a no-op costs is DVC reading the pipeline and lock files,
the params of each stage, and checking every dependency and output against the lock; the content
of outputs only matters once (their hashes are cached in .dvc/tmp after the commit).

Writes JSON (default results/benchmarks/dvc_noop.json).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
COMMANDS = {"repro": ["repro"], "status": ["status"], "status dvc.yaml": ["status", "dvc.yaml"]}


def sh(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("CIRCADIAN_PROFILE", None)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def outputs(dvc_yaml: Path) -> list[str]:
    """Every output path of the stages in ``dvc_yaml`` (outs, metrics and plots), then every
    dependency (the missing ones - files inside an output folder - get stand-ins too)."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    paths = []
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots", "deps"):
            for out in stage.get(kind, []):
                paths.append(next(iter(out)) if isinstance(out, dict) else out)
    return paths


def populate(repo: Path, results: Path | None) -> int:
    """Put every output of the root pipeline in place; returns how many were copied from ``results``."""
    copied = 0
    for rel in outputs(repo / "dvc.yaml"):
        dest = repo / rel
        if dest.exists():
            continue
        src = results.parent / rel if results is not None and rel.startswith("results/") else None
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src is not None and src.exists():
            shutil.copytree(src, dest) if src.is_dir() else shutil.copy2(src, dest)
            copied += 1
        elif Path(rel).suffix:
            dest.write_text(f"stand-in for {rel}\n")
        else:
            dest.mkdir(parents=True, exist_ok=True)
            (dest / "stand-in.txt").write_text(f"stand-in for {rel}\n")
    return copied


def prepare(rev: str, where: Path, results: Path | None, generator: str | None = None) -> dict[str, Any]:
    """A clone at ``rev``; with ``generator``, its dvc.yaml is rewritten by ``generator``'s dvcgen.py
    (the same params and DAG through an older generator: a like-for-like comparison)."""
    repo = where / (f"{rev}+dvcgen@{generator}" if generator else rev)
    sh(["git", "clone", "-q", str(ROOT), str(repo)], where)
    sh(["git", "checkout", "-q", rev], repo)
    if generator:
        old = sh(["git", "show", f"{generator}:pipelines/scripts/dvcgen.py"], repo).stdout
        (repo / "pipelines/scripts/dvcgen.py").write_text(old)
        shutil.rmtree(repo / "pipelines/dvc", ignore_errors=True)
        sh([sys.executable, "-m", "pipelines.scripts.dvcgen"], repo)
    copied = populate(repo, results)
    sh([str(BIN / "dvc"), "commit", "--force", "--quiet", "dvc.yaml"], repo)
    stages = len(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])
    pipelines = sorted(str(p.relative_to(repo)) for p in repo.rglob("dvc.yaml") if ".git" not in p.parts)
    return {"repo": repo, "stages": stages, "pipeline_files": pipelines, "outputs_copied": copied}


def timed(args: list[str], repo: Path) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = sh([str(BIN / "dvc"), *args], repo, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default="fbdad49", help="revision to compare with (default: before issue 13)")
    ap.add_argument("--rev", default="HEAD", help="revision measured against the baseline")
    ap.add_argument("--baseline-generator", metavar="REV", help="instead of --baseline: HEAD's params and DAG "
                    "written by REV's dvcgen.py (e.g. fbdad49, before issue 13)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--results", type=Path, help="a results/ folder of a real run to copy outputs from")
    ap.add_argument("--out", type=Path, default=ROOT / "results/benchmarks/dvc_noop.json")
    args = ap.parse_args(argv)
    from circadian_core.record import benchmark_header

    load_before, started = os.getloadavg()[0], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dvc-noop-") as tmp:
        if args.baseline_generator:
            base = f"{args.rev} with dvcgen of {args.baseline_generator}"
            repos = {base: prepare(args.rev, Path(tmp), args.results, args.baseline_generator)}
        else:
            base = args.baseline
            repos = {base: prepare(base, Path(tmp), args.results)}
        repos[args.rev] = prepare(args.rev, Path(tmp), args.results)
        revs = [base, args.rev]
        samples: dict[str, dict[str, list[tuple[float, float]]]] = {r: {c: [] for c in COMMANDS} for r in revs}
        noop = {}
        for _ in range(args.repeats):
            for rev in revs:
                for name, cmd in COMMANDS.items():
                    wall, cpu, out = timed(cmd, repos[rev]["repo"])
                    samples[rev][name].append((wall, cpu))
                    if name == "repro":
                        noop[rev] = "Running stage" not in out
    report: dict[str, Any] = {
        **benchmark_header("dvc_noop", " ".join(sys.argv), "cpu", load_before=load_before, started=started),
        "repeats": args.repeats,
        "revisions": {},
    }
    for rev in revs:
        info = {k: v for k, v in repos[rev].items() if k != "repo"}
        info["repro_was_noop"] = noop[rev]
        for name, pairs in samples[rev].items():
            info[name] = {
                "wall_s_median": statistics.median(w for w, _ in pairs),
                "cpu_s_median": statistics.median(c for _, c in pairs),
                "wall_s": [round(w, 3) for w, _ in pairs],
            }
        report["revisions"][rev] = info
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for rev in revs:
        r = report["revisions"][rev]
        print(f"{rev}: {r['stages']} stages; " + "; ".join(
            f"{n}: {r[n]['wall_s_median']:.2f}s wall, {r[n]['cpu_s_median']:.2f}s cpu" for n in COMMANDS))
    print(f"load average {load_before:.1f} -> {report['load_average_1m_after']:.1f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
