"""The steps of benchmarks/gpu_check.sh after its setup: the smoke DAG, then every GPU benchmark, one summary.

Run through gpu_check.sh (it prepares the environment); alone: ``python benchmarks/gpu_check.py --mode cpu``.

1. ``smoke``: ``snakemake --cores all --resources gpu=N <results>/targets.json`` for the ``smoke`` profile
   (``smoke-cpu`` in CPU mode), under a time limit; then the learning checks of pipelines/targets.yaml
   computed from whatever run records exist (a failed cell does not hide the others' checks), the
   wall time of every cell, and the logs of failed jobs copied next to the summary.
2. the benchmarks, in priority order, each skipped (and said so) when the time left is below its
   estimate: hal wake at the paper shape, circadia's sleep step on the 1.7B-shaped model, heads
   cached vs on-the-fly ResNet-50 at 224, the heads paper suite on the smoke cache, circadia on the
   135M shape. Each writes its own JSON next to the summary.
3. ``gpu_check.json``: device name, torch/CUDA versions, the command, date, commit, every step's
   command, exit code and wall time, the smoke checks and each benchmark's headline numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclasses.dataclass
class Mode:
    """What differs between the GPU run and its CPU rehearsal."""

    name: str  # gpu | cpu
    profile: str  # the smoke profile this mode runs
    device: str
    snakemake_resources: list[str]
    smoke_limit_s: int  # the smoke DAG's share of the budget
    targets_required: bool  # the learning checks (pipelines/targets.yaml `smoke:`) must hold


MODES = {
    # 4 GPU jobs at a time: the 1.7B circadia cells take ~10-20 GB each, hal/heads/plastic far less
    "gpu": Mode("gpu", "smoke", "cuda", ["gpu=4", "mem_mb=120000"], 400, True),
    # the CPU rehearsal computes the smoke checks on its tiny runs too (the code path), but at CPU sizes
    # nothing has to be learned
    "cpu": Mode("cpu", "smoke-cpu", "cpu", ["gpu=0"], 900, False),
}


@dataclasses.dataclass
class Step:
    name: str
    cmd: list[str]
    rc: int | None = None
    wall_s: float = 0.0
    skipped: str = ""
    output_tail: str = ""


class Budget:
    def __init__(self, seconds: float) -> None:
        self.t0 = time.monotonic()
        self.seconds = seconds

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.t0)


def run_step(step: Step, limit_s: float, log_dir: Path) -> Step:
    """Run ``step.cmd`` (from the repository root) with a time limit; keep its output in ``log_dir``.

    The step runs in its own process group: past the limit the whole group (snakemake and the jobs it
    started) is ended, so nothing keeps running into the next step's timings.
    """
    t0 = time.monotonic()
    print(f"[gpu_check] {step.name}: {' '.join(step.cmd)} (limit {limit_s:.0f}s)", flush=True)
    log = log_dir / f"{step.name}.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(step.cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            step.rc = proc.wait(timeout=max(limit_s, 1))
        except subprocess.TimeoutExpired:
            for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.killpg(proc.pid, sig)
                    proc.wait(timeout=grace)
                    break
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    continue
            step.rc = 124
    step.wall_s = time.monotonic() - t0
    step.output_tail = log.read_text(errors="replace")[-1500:]
    print(f"[gpu_check] {step.name}: rc {step.rc} in {step.wall_s:.0f}s", flush=True)
    return step


def device_info(mode: Mode) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
                            "cpu_count": os.cpu_count(), "host": platform.node()}
    if mode.name == "gpu":
        if not torch.cuda.is_available():
            raise SystemExit("error: no CUDA device; run `benchmarks/gpu_check.sh --cpu` for the CPU rehearsal")
        props = torch.cuda.get_device_properties(0)
        info.update(device_name=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    device_count=torch.cuda.device_count())
    else:
        from circadian_core.record import cpu_name

        info["device_name"] = cpu_name()
    return info


def _records(profile: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted((ROOT / "results" / profile / "runs").glob("*/*/seed*.json")):
        try:
            out.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            continue
    return out


def learning_checks(records: list[dict[str, Any]], required: bool) -> dict[str, Any]:
    """pipelines/targets.yaml's ``smoke`` targets on the records there are (a missing cell is reported)."""
    import pandas as pd

    from circadian_core.config import ConfigError
    from pipelines.scripts.check_targets import evaluate, load_targets

    rows = [{"study": r["study"], "variant": r["variant"], "seed": r["seed"], "metric": k, "value": v}
            for r in records for k, v in r["metrics"].items() if isinstance(v, (int, float))]
    runs = pd.DataFrame(rows, columns=["study", "variant", "seed", "metric", "value"])
    checks = []
    for t in load_targets("smoke"):
        try:
            checks.append(evaluate(t, runs).to_json())
        except ConfigError as err:
            checks.append({**dataclasses.asdict(t), "ok": False, "missing": str(err)})
    return {"targets": "pipelines/targets.yaml: smoke", "required": required, "held": sum(c["ok"] for c in checks),
            "total": len(checks), "checks": checks}


def smoke(mode: Mode, budget: Budget, out: Path, jobs: str) -> dict[str, Any]:
    os.environ["CIRCADIAN_PROFILE"] = mode.profile
    target = f"results/{mode.profile}/targets.json"
    cmd = [sys.executable, "-m", "snakemake", target, "--cores", jobs, "--keep-going", "--rerun-incomplete",
           "--resources", *mode.snakemake_resources, "--config", f"profile={mode.profile}"]
    step = run_step(Step("smoke_dag", cmd), min(mode.smoke_limit_s, budget.left() - 30), out / "logs")
    records = _records(mode.profile)
    logs = ROOT / "results" / mode.profile / "logs"
    if logs.exists():  # the jobs' logs come back with the summary (small text files)
        shutil.copytree(logs, out / "logs" / "smoke_jobs", dirs_exist_ok=True)
    cells = {f"{r['study']}/{r['variant']}/seed{r['seed']}": round(r["timings"].get("wall_s", float("nan")), 2)
             for r in records}
    from pipelines.dag import load_profile

    expected = len(load_profile(mode.profile).cells())
    return {"profile": mode.profile, "step": dataclasses.asdict(step), "target_wall_s": 480,
            "meets_target": bool(step.rc == 0 and step.wall_s <= 480), "cells_done": len(records),
            "cells_expected": expected, "cell_wall_s": cells, "cell_wall_s_sum": round(sum(cells.values()), 1),
            "learning": learning_checks(records, mode.targets_required)}


def benchmark_steps(mode: Mode, out: Path) -> list[tuple[Step, float, Path]]:
    """(step, estimated seconds, its JSON) in priority order."""
    py = sys.executable
    dev = mode.device
    b = out / "bench"
    art = ROOT / "results" / mode.profile / "artifacts"
    if mode.name == "gpu":
        llm = art / "smollm2-1.7b-random"
        small = [py, "-m", "circadia.models.random_init", str(b / "smollm2-135m-random"),
                 "--shape", "HuggingFaceTB/SmolLM2-135M-Instruct", "--device", dev]
        return [
            (Step("hal_speed", [py, "benchmarks/hal.py", "--device", dev, "--profile", "paper", "--steps", "30",
                                "--repeats", "3", "--out", str(b / "hal_speed.json")]), 45, b / "hal_speed.json"),
            (Step("circadia_1p7b", [py, "benchmarks/circadia.py", "--device", dev, "--model", str(llm),
                                    "--max-seq-len", "512", "--skip-night", "--repeats", "2",
                                    "--out", str(b / "circadia_1p7b.json")]), 90, b / "circadia_1p7b.json"),
            (Step("heads_speed", [py, "benchmarks/heads.py", "--device", dev, "--backbone", "resnet50",
                                  "--weights", "random", "--image-size", "224", "--data", "synthetic-cifar100",
                                  "--n-train", "8192", "--extract-batch", "512", "--onthefly-batches", "8",
                                  "--repeats", "2", "--profile", "paper", "--out", str(b / "heads_speed.json")]),
             60, b / "heads_speed.json"),
            (Step("heads_suite", [py, "benchmarks/heads.py", "--suite", "paper", "--device", dev, "--study", "heads",
                                  "--features", str(art / "synthetic_cifar100_resnet50.pt"),
                                  "--out", str(b / "heads_suite.json")]), 75, b / "heads_suite.json"),
            (Step("random_135m", small), 20, b / "smollm2-135m-random"),
            (Step("circadia_135m", [py, "benchmarks/circadia.py", "--device", dev, "--model",
                                    str(b / "smollm2-135m-random"), "--max-seq-len", "512", "--skip-night",
                                    "--repeats", "2", "--out", str(b / "circadia_135m.json")]), 45,
             b / "circadia_135m.json"),
        ]
    tiny = ["--overrides", json.dumps({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                                       "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16})]
    return [  # the same steps at CPU sizes (the smoke-cpu artifacts), to prove every command runs
        (Step("hal_speed", [py, "benchmarks/hal.py", "--device", dev, "--profile", "paper", "--batch-size", "16",
                            "--steps", "1", "--warmup", "1", "--repeats", "1", "--out", str(b / "hal_speed.json")]),
         120, b / "hal_speed.json"),
        (Step("circadia_1p7b", [py, "benchmarks/circadia.py", "--device", dev, "--model",
                                str(art / "smollm2-tiny-random"), "--iters", "2", "--batch-size", "2",
                                "--max-seq-len", "64", "--skip-night", "--repeats", "1",
                                "--out", str(b / "circadia_1p7b.json")]), 120, b / "circadia_1p7b.json"),
        (Step("heads_speed", [py, "benchmarks/heads.py", "--device", dev, "--backbone", "resnet50", "--weights",
                              "random", "--image-size", "32", "--data", "synthetic-cifar100", "--n-train", "256",
                              "--epochs", "1", "--circadian-epochs", "1", "--repeats", "1", "--threads", "1",
                              "--profile", "paper", "--out", str(b / "heads_speed.json")]), 120, b / "heads_speed.json"),
        (Step("heads_suite", [py, "benchmarks/heads.py", "--suite", "paper", "--device", dev, "--study", "heads",
                              "--threads", "1", "--features", str(art / "synthetic_cifar100_resnet50.pt"),
                              "--out", str(b / "heads_suite.json")]), 120, b / "heads_suite.json"),
        (Step("random_135m", [py, "-m", "circadia.models.random_init", str(b / "smollm2-135m-random"),
                              "--shape", "HuggingFaceTB/SmolLM2-135M-Instruct", "--device", dev, "--dtype", "float32",
                              *tiny]), 60, b / "smollm2-135m-random"),
        (Step("circadia_135m", [py, "benchmarks/circadia.py", "--device", dev, "--model",
                                str(b / "smollm2-135m-random"), "--iters", "2", "--batch-size", "2",
                                "--max-seq-len", "64", "--skip-night", "--repeats", "1",
                                "--out", str(b / "circadia_135m.json")]), 120, b / "circadia_135m.json"),
    ]


# the headline numbers of each benchmark's JSON (dotted paths into the file it writes), for the summary
HEADLINES = {
    "hal_speed": ["wake.images_per_s", "nrem_merge.ms", "batch_new", "batch_replayed"],
    "circadia_1p7b": ["train.ours.tokens_per_s", "train.bare_peft.tokens_per_s", "train.speedup", "train.same_objective"],
    "circadia_135m": ["train.ours.tokens_per_s", "train.bare_peft.tokens_per_s", "train.speedup", "train.same_objective"],
    "heads_speed": ["cached.samples_per_s", "on_the_fly.samples_per_s", "speedup", "extract.images_per_s"],
    "heads_suite": ["wall_s", "target_wall_s", "meets_target"],
}


def _pick(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def benchmarks(mode: Mode, budget: Budget, out: Path) -> dict[str, Any]:
    (out / "bench").mkdir(parents=True, exist_ok=True)
    done: dict[str, Any] = {}
    for step, estimate, result in benchmark_steps(mode, out):
        if budget.left() < estimate + 10:
            step.skipped = f"{budget.left():.0f}s left, the step needs about {estimate}s"
            print(f"[gpu_check] {step.name}: skipped ({step.skipped})", flush=True)
            done[step.name] = {"step": dataclasses.asdict(step)}
            continue
        run_step(step, min(budget.left() - 10, 4 * estimate), out / "logs")
        entry: dict[str, Any] = {"step": dataclasses.asdict(step)}
        if result.suffix == ".json" and result.exists():
            doc = json.loads(result.read_text())
            entry["headline"] = {k: _pick(doc, k) for k in HEADLINES.get(step.name, [])}
            entry["json"] = str(result.relative_to(out))
        done[step.name] = entry
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=sorted(MODES), default="gpu")
    ap.add_argument("--out", required=True, help="folder of the summary, the benchmark JSONs and the logs")
    ap.add_argument("--budget-s", type=float, default=540.0, help="seconds for everything after the setup")
    ap.add_argument("--jobs", default="all", help="snakemake --cores")
    ap.add_argument("--setup", help="JSON of the setup steps gpu_check.sh ran (merged into the summary)")
    ap.add_argument("--command", default="", help="the command line that started the check")
    ap.add_argument("--skip-smoke", action="store_true")
    ap.add_argument("--skip-bench", action="store_true")
    args = ap.parse_args(argv)
    mode = MODES[args.mode]
    budget = Budget(args.budget_s)
    out = Path(args.out).resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "check": "benchmarks/gpu_check.sh",
        "mode": mode.name,
        "command": args.command or " ".join(sys.argv),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": os.environ.get("GPU_CHECK_COMMIT") or _git_sha(),
        **device_info(mode),
        "setup": json.loads(Path(args.setup).read_text()) if args.setup and Path(args.setup).exists() else None,
    }
    t0 = time.monotonic()
    if not args.skip_smoke:
        summary["smoke"] = smoke(mode, budget, out, args.jobs)
        _write(out, summary)
    if not args.skip_bench:
        summary["benchmarks"] = benchmarks(mode, budget, out)
    summary["wall_s"] = round(time.monotonic() - t0, 1)
    path = _write(out, summary)
    s = summary.get("smoke")
    if s:
        print(f"[gpu_check] smoke {s['profile']}: {s['cells_done']}/{s['cells_expected']} cells, rc {s['step']['rc']} "
              f"in {s['step']['wall_s']:.0f}s; learning checks {s['learning']['held']}/{s['learning']['total']} hold")
    print(f"[gpu_check] summary -> {path}")
    smoke_ok = not s or (s["step"]["rc"] == 0 and (not mode.targets_required
                                                   or s["learning"]["held"] == s["learning"]["total"]))
    return 0 if smoke_ok else 1


def _git_sha() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _write(out: Path, summary: dict[str, Any]) -> Path:
    from circadian_core.record import write_json_atomic

    return write_json_atomic(out / "gpu_check.json", summary)


if __name__ == "__main__":
    sys.exit(main())
