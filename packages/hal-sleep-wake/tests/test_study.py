"""The study function end to end (tiny), determinism, the data artifact, and the CLI's dry run."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from circadian_core.config import ConfigError, deep_merge
from hal_sleep_wake.config import DataConfig
from hal_sleep_wake.data import build_artifact, load_sequence, read_sequence, save_sequence
from hal_sleep_wake.studies import run

DIGITS = {"sequence": ["split_digits"], "n_tasks": 2}


@pytest.fixture(scope="module")
def digits_artifact(tmp_path_factory):
    path = tmp_path_factory.mktemp("hal") / "hal_digits.npz"
    build_artifact(dict(DIGITS), out=path)
    return path


def test_artifact_round_trip_equals_the_loader(digits_artifact):
    a, b = read_sequence(digits_artifact), load_sequence(DataConfig(**DIGITS))
    assert a.names == b.names and a.classes == b.classes and a.head_sizes == [5, 5]
    for part in ("x_train", "y_train", "x_test", "y_test"):
        for u, v in zip(getattr(a, part), getattr(b, part)):
            assert torch.equal(u, v)
    assert a.x_train[0].dtype == torch.uint8 and a.x_train[0].shape[1:] == (1, 8, 8)


def test_same_seed_same_accuracy_matrix_on_cpu(tmp_path, seq, tiny_dict):
    save_sequence(seq, tmp_path / "seq.npz")
    config = deep_merge(tiny_dict, {"data": {"artifact": "seq"}, "rem": {"dream": "mixup+excite"}})
    arts = {"seq": tmp_path / "seq.npz"}
    first = run(config, seed=0, artifacts=arts)
    again = run(config, seed=0, artifacts=arts)
    other = run(config, seed=1, artifacts=arts)
    assert first.info["accuracy_matrix"] == again.info["accuracy_matrix"]
    assert first.history == again.history
    assert _same_but_speed(first, again)
    assert first.history != other.history
    m = first.metrics
    for p in ("til", "cil"):
        assert {f"{p}_acc", f"{p}_bwt", f"{p}_forgetting"} <= set(m)
        assert len(first.info["accuracy_matrix"]["task" if p == "til" else "class"]) == 2
    assert first.info["scenarios"]["task"]["sleeps"] == 2
    assert m["wake_images_per_s"] > 0 and m["merge_ms"] > 0


def _same_but_speed(a, b) -> bool:
    timing = {"wake_images_per_s", "merge_ms"}
    return {k: v for k, v in a.metrics.items() if k not in timing} == {k: v for k, v in b.metrics.items() if k not in timing}


def test_missing_artifact_and_bad_keys_are_one_clear_error(tiny_dict):
    with pytest.raises(ConfigError, match="not among this study's needs"):
        run(deep_merge(tiny_dict, {"data": {"artifact": "hal_digits"}}), seed=0, artifacts={})
    with pytest.raises(ConfigError, match="unknown key 'lrr'.*did you mean 'lr'"):
        run(deep_merge(tiny_dict, {"wake": {"lrr": 0.1}}), seed=0)
    with pytest.raises(ConfigError, match="memory.policy"):
        run(deep_merge(tiny_dict, {"memory": {"policy": "lifo"}}), seed=0)


def _cli(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "hal_sleep_wake", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_dry_run_prints_the_plan_without_data_or_model():
    proc = _cli(code=(
        "import sys; from hal_sleep_wake.cli import main; rc = main(['--dry-run', '--set', 'sleep.scale=0.5']);"
        "print('LOADED', sorted(m for m in ('torch', 'torchvision', 'peft', 'sklearn', 'circadian_core.datasets')"
        " if m in sys.modules)); sys.exit(rc)"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "plan (nothing loaded, no model built)" in out
    assert "layer2.0.downsample.0" in out and "fc.heads.4" in out and "W <- W + 0.5 * (alpha/r) B A" in out
    assert "LOADED []" in out  # neither a framework nor a dataset was touched


def test_module_entry_point_and_bad_input():
    proc = _cli("--dry-run", "--set", "method=er")
    assert proc.returncode == 0 and "er: every parameter trains with replay" in proc.stdout
    bad = _cli("--dry-run", "--set", "wake.lrr=1")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown key 'lrr'" in bad.stderr


def test_config_defaults_are_the_mini_base_of_params_yaml():
    """The CLI without --config runs what the pipeline's mini cells run (the artifact aside)."""
    import dataclasses

    from hal_sleep_wake.config import load_config
    from pipelines.dag import load_profile

    base = load_profile("mini").studies["hal"].config("nrem-rem")
    base["data"] = {k: v for k, v in base["data"].items() if k != "artifact"}
    assert dataclasses.asdict(load_config(base)) == dataclasses.asdict(load_config({}))


def test_cli_run_writes_the_record_only_where_asked(tmp_path, monkeypatch, capsys):
    import json

    from hal_sleep_wake.cli import main

    monkeypatch.chdir(tmp_path)
    small = ["--set", "data.n_tasks=2", "--set", "wake.batch_size=128", "--set", "scenarios=[task]",
             "--set", "sleep.rem=false", "--set", "model.width=4", "--set", "model.norm_groups=2", "--device", "cpu"]
    assert main([*small, "--out", str(tmp_path / "run.json")]) == 0
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["study"] == "hal" and len(record["info"]["accuracy_matrix"]["task"]) == 2
    assert "task-incremental accuracy matrix" in capsys.readouterr().out
    assert main(small) == 0  # no --out: printed, nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
