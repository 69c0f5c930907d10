"""benchmarks/gpu_check.sh's parts that can be checked without running it (the whole CPU rehearsal is
`bash benchmarks/gpu_check.sh --cpu`): every benchmark command it will send to the GPU names options its
script has, and the learning checks read whatever records exist."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("mode", ["gpu", "cpu"])
def test_every_benchmark_command_uses_options_its_script_has(mode, tmp_path):
    gc = _gpu_check()
    steps = gc.benchmark_steps(gc.MODES[mode], tmp_path)
    assert [s.name for s, _, _ in steps][:2] == ["hal_speed", "circadia_1p7b"]  # the priorities
    for step, estimate, _ in steps:
        assert estimate > 0
        if step.cmd[1] == "-m":
            source = ROOT / "packages" / "circadia" / "src" / (step.cmd[2].replace(".", "/") + ".py")
        else:
            source = ROOT / step.cmd[1]
        text = source.read_text()
        for opt in (a for a in step.cmd[2:] if a.startswith("--")):
            assert re.search(rf"[\"']{re.escape(opt)}[\"']", text), f"{step.name}: {source.name} has no {opt}"


def test_learning_checks_use_the_records_there_are():
    gc = _gpu_check()
    records = [{"study": "heads", "variant": "backprop", "seed": s, "metrics": {"accuracy": a}}
               for s, a in ((0, 0.30), (1, 0.40))]
    records.append({"study": "heads", "variant": "circadian", "seed": 0, "metrics": {"accuracy": 0.01}})
    out = gc.learning_checks(records, required=True)
    by = {(c["study"], c["variant"]): c for c in out["checks"]}
    assert by[("heads", "backprop")]["ok"] and by[("heads", "backprop")]["observed"] == pytest.approx(0.35)
    assert not by[("heads", "circadian")]["ok"]  # ran, below 5x chance
    assert "no such results" in by[("hal_seqcl", "finetune")]["missing"] and not by[("hal_seqcl", "finetune")]["ok"]
    assert out["total"] == len(out["checks"]) and out["held"] == 1


def test_the_scripts_parse():
    for script in ("gpu_check.sh", "prepare_gpu_wheels.sh"):
        subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / script)], check=True)


def test_a_step_past_its_limit_ends_with_everything_it_started(tmp_path):
    """The smoke DAG's time limit must also end the jobs snakemake started (they would skew the benchmarks)."""
    gc = _gpu_check()
    marker = tmp_path / "child-still-running"
    cmd = ["bash", "-c", f"(sleep 3; touch {marker}) & sleep 30"]
    step = gc.run_step(gc.Step("slow", cmd), 1, tmp_path)
    assert step.rc == 124 and step.wall_s < 10
    import time

    time.sleep(3.5)
    assert not marker.exists()
