"""The circadia cells of a profile, one process each as the pipeline runs them: wall, CPU and phases.

    python benchmarks/circadia_cells.py                          # every mini cell (5 variants x 2 seeds)
    python benchmarks/circadia_cells.py --cells full/0 no-dreams/1 --phase-clock cpu

Each cell runs ``pipelines.scripts.run_cell`` in a child process (imports included, as in the
pipeline), writing its record to a scratch folder. Reported per cell and summed: the record's
``timings.wall_s`` (what the time budget sums), the child's CPU seconds (user + system, from the
OS; on a shared machine this moves far less than wall time), and the night phases summed over the
cell's nights. ``--phase-clock cpu`` makes the night's phase timings CPU seconds of the process
instead of wall seconds, so phases can be compared across runs on a busy machine. The
``circadia_base_eval`` artifact must exist (``python -m pipelines.scripts.build_artifact
circadia_base_eval``). Writes JSON (default results/benchmarks/circadia_cells.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))


def _child(variant: str, seed: str, out: str, profile: str | None, phase_clock: str) -> int:
    """Run one cell in this process (the child side of :func:`run_one`)."""
    if phase_clock == "cpu":
        import types

        import circadia.sleep.night as night

        night.time = types.SimpleNamespace(perf_counter=time.process_time, strftime=time.strftime, time=time.time)
    from pipelines.scripts.run_cell import main

    return main(["circadia", variant, seed, "--out", out, *(["--profile", profile] if profile else [])])


def run_one(variant: str, seed: int, out: Path, profile: str | None, phase_clock: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", variant, str(seed), str(out), "--phase-clock", phase_clock,
           *(["--profile", profile] if profile else [])]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"cell {variant}/{seed} failed: {proc.stderr.read()[-2000:]}")
    rec = json.loads(out.read_text())
    phases = {k[len("phase_"):]: v for k, v in rec["timings"].items() if k.startswith("phase_")}
    return {"variant": variant, "seed": seed, "wall_s": rec["timings"]["wall_s"], "process_wall_s": wall,
            "process_cpu_s": usage.ru_utime + usage.ru_stime, "phases_s": phases}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", help="params.yaml profile (default: its `profile` key)")
    ap.add_argument("--cells", nargs="*", help="variant/seed pairs (default: every cell of the profile's circadia study)")
    ap.add_argument("--phase-clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "circadia_cells.json"))
    ap.add_argument("--child", nargs=3, metavar=("VARIANT", "SEED", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(*args.child, args.profile, args.phase_clock)

    from circadian_core.record import benchmark_header, write_json_atomic
    from pipelines.dag import load_profile

    profile = load_profile(args.profile)
    study = profile.studies["circadia"]
    cells = [tuple(c.split("/")) for c in args.cells] if args.cells else [(v, str(s)) for v in study.variants for s in study.seeds]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="circadia-cells-") as tmp:
        for variant, seed in cells:
            rows.append(run_one(variant, int(seed), Path(tmp) / f"{variant}-{seed}.json", args.profile, args.phase_clock))
            r = rows[-1]
            print(f"{variant}/{seed}: wall_s {r['wall_s']:.1f}, CPU {r['process_cpu_s']:.1f} s", file=sys.stderr)
    phases: dict[str, float] = {}
    for r in rows:
        for k, v in r["phases_s"].items():
            phases[k] = phases.get(k, 0.0) + v
    command = "python benchmarks/circadia_cells.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = {**benchmark_header("circadia_cells", command, "cpu", load_before=load_before, started=t0),
           "profile": profile.name, "phase_clock": args.phase_clock, "cells": rows,
           "sum_wall_s": sum(r["wall_s"] for r in rows), "sum_process_cpu_s": sum(r["process_cpu_s"] for r in rows),
           "sum_phases_s": phases}
    path = write_json_atomic(args.out, out)
    print(f"{len(rows)} circadia cells: sum wall_s {out['sum_wall_s']:.1f} s, CPU {out['sum_process_cpu_s']:.1f} s "
          f"(load {load_before:.1f} before) -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
