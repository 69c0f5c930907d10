"""Whole-reproduction benchmark: wall time of the Snakemake run of a profile, time per rule and per study.

    python benchmarks/repro.py                       # fresh clone of HEAD in a temp folder, mini, all cores
    python benchmarks/repro.py --in-place --forceall # this checkout, rerun everything
    python benchmarks/repro.py --cores 2 --profile mini --out results/benchmarks/repro.json

What ``make repro`` runs, minus the setup (venv, TeX Live) and ``dvc commit``: ``snakemake --profile
pipelines/profiles/local --cores N`` for the profile, with cells started warm
(pipelines/scripts/warm.py) as make repro does; ``--cold`` without the warm server, and
``--compare-cold`` both, one after the other in two fresh clones, with their ratio. By default in a fresh ``git clone`` of HEAD
(committed work only; artifacts are rebuilt, as on a reader's machine), removed afterwards unless
``--keep``. Progress lines with an ETA are printed while it runs (pipelines/scripts/progress.py;
``--history`` seeds the ETA with an earlier JSON). Writes JSON (default
results/benchmarks/repro.json): the benchmark header (CPU, load average before and after: other
work on the machine stretches these times), ``wall_s``, Snakemake's exit status, time per rule and
per study (job wall time from Snakemake's log, process start-up included), and the summed
``timings.wall_s`` of the cell records per study (compute only, no start-up).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PACKAGES = ("circadian-core", "circadian-vision", "hal-sleep-wake", "circadia")


def clone(dest: Path) -> Path:
    """A fresh clone of this checkout's HEAD (what a reader gets), with no results."""
    subprocess.run(["git", "clone", "--quiet", "--local", str(ROOT), str(dest)], check=True)
    return dest


def environment(repo: Path) -> dict[str, str]:
    """This interpreter's tools, the clone's code first on the path (as /work/wt/env.sh does)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(repo), *(str(repo / "packages" / p / "src") for p in PACKAGES)])
    env["MPLBACKEND"] = "Agg"
    return env


def cell_seconds(repo: Path, profile_name: str) -> dict[str, dict[str, float]]:
    """Summed and mean ``timings.wall_s`` of the cell records per study (compute only)."""
    from circadian_core.record import read_record

    out: dict[str, dict[str, float]] = {}
    for path in sorted((repo / "results" / profile_name / "runs").rglob("seed*.json")):
        try:
            rec = read_record(path)
        except ValueError:
            continue
        row = out.setdefault(rec["study"], {"cells": 0, "total_s": 0.0})
        row["cells"] += 1
        row["total_s"] += float(rec.get("timings", {}).get("wall_s", 0.0))
    for row in out.values():
        row["mean_s"] = row["total_s"] / row["cells"]
    return out


def run(repo: Path, args: argparse.Namespace, *, warm: bool = True) -> dict[str, Any]:
    from pipelines.scripts.progress import RunLog, follow, history_from, render_summary

    cmd = [str(Path(sys.executable).parent / "snakemake"), "--profile", "pipelines/profiles/local",
           "--cores", str(args.cores)]
    if warm:
        cmd = [sys.executable, "-m", "pipelines.scripts.warm", "run", "--", *cmd]
    if args.forceall:
        cmd.append("--forceall")
    env = environment(repo)
    env["CIRCADIAN_PROFILE"] = args.profile
    log = RunLog(cores=args.cores, history=history_from(args.history))
    t0 = time.perf_counter()
    with subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        follow(proc.stdout, log, sys.stdout, echo=args.verbose)
    wall = time.perf_counter() - t0
    summary = log.summary()
    print(render_summary(summary))
    return {"snakemake_command": " ".join(cmd[1:]), "warm": warm, "returncode": proc.returncode, "wall_s": wall,
            "progress": summary, "cell_compute_s": cell_seconds(repo, args.profile)}


def one(args: argparse.Namespace, *, warm: bool) -> dict[str, Any]:
    """One run, in a fresh clone (removed afterwards unless --keep) or in place."""
    scratch = None if args.in_place else Path(tempfile.mkdtemp(prefix="circadian-repro-"))
    repo = ROOT if scratch is None else clone(scratch / "repo")
    try:
        return run(repo, args, warm=warm)
    finally:
        if scratch is not None and not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        elif scratch is not None:
            print(f"clone kept at {repo}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="mini")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--in-place", action="store_true", help="run in this checkout instead of a fresh clone")
    ap.add_argument("--forceall", action="store_true", help="rerun every job even if its outputs are current")
    ap.add_argument("--keep", action="store_true", help="keep the fresh clone (its path is printed)")
    ap.add_argument("--history", help="an earlier repro.json, for the first ETA estimates")
    ap.add_argument("--verbose", action="store_true", help="show Snakemake's log too, not only progress lines")
    ap.add_argument("--cold", action="store_true", help="start every cell cold (no warm server)")
    ap.add_argument("--compare-cold", action="store_true",
                    help="run warm, then cold, each in a fresh clone, and record both and their ratio")
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "repro.json"))
    args = ap.parse_args(argv)
    if args.compare_cold and args.in_place:
        ap.error("--compare-cold needs fresh clones (drop --in-place)")
    from circadian_core.record import benchmark_header, write_json_atomic

    load_before, started = os.getloadavg()[0], time.perf_counter()
    result = one(args, warm=not args.cold)
    if args.compare_cold:
        cold = one(args, warm=False)
        result["cold"] = {k: cold[k] for k in ("snakemake_command", "returncode", "wall_s", "progress", "cell_compute_s")}
        result["cold_over_warm"] = cold["wall_s"] / result["wall_s"]
        print(f"cold {cold['wall_s']:.0f}s / warm {result['wall_s']:.0f}s = {result['cold_over_warm']:.2f}x")
    command = "python benchmarks/repro.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = {**benchmark_header("repro/" + args.profile, command.strip(), "cpu", load_before=load_before,
                              started=started),
           "profile": args.profile, "cores": args.cores, "fresh_clone": not args.in_place, **result}
    path = write_json_atomic(args.out, out)
    status = "ok" if result["returncode"] == 0 else f"snakemake failed ({result['returncode']})"
    print(f"{status}: {args.profile} reproduction in {result['wall_s']:.0f}s on {args.cores} core(s) -> {path}")
    return int(result["returncode"] != 0)


if __name__ == "__main__":
    sys.exit(main())
