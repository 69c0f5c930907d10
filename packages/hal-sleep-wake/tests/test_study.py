"""The study function end to end (tiny): its contract, determinism, the data artifact, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from circadian_core.config import ConfigError, deep_merge
from circadian_core.record import StudyResult
from hal_sleep_wake.config import load_config
from hal_sleep_wake.data import build_artifact, load_sequence, read_sequence, save_sequence
from hal_sleep_wake.studies import CONTRACT, run

DIGITS = {"sequence": [{"name": "split_digits", "args": {"n_tasks": 2}}]}


@pytest.fixture(scope="module")
def digits_artifact(tmp_path_factory):
    path = tmp_path_factory.mktemp("hal") / "hal_digits.npz"
    build_artifact(json.loads(json.dumps(DIGITS)), out=path)
    return path


def test_artifact_round_trip_equals_the_loader(digits_artifact):
    a, b = read_sequence(digits_artifact), load_sequence(load_config({"data": DIGITS}).data)
    assert a.names == b.names == ["digits 0,1,2,3,4", "digits 5,6,7,8,9"] and a.head_sizes == [5, 5]
    for part in ("x_train", "y_train", "x_test", "y_test"):
        for u, v in zip(getattr(a, part), getattr(b, part)):
            assert torch.equal(u, v)
    assert a.x_train[0].dtype == torch.uint8 and a.x_train[0].shape[1:] == (1, 8, 8)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "pickle"])
def test_a_corrupt_artifact_is_one_error_naming_the_file_and_the_fix(digits_artifact, tmp_path, damage):
    bad = tmp_path / "hal_digits.npz"
    data = digits_artifact.read_bytes()
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        bad.write_bytes(b"not a zip file at all")
    else:  # an object array, which numpy would only read with allow_pickle=True
        import numpy as np

        with open(bad, "wb") as fh:
            np.savez(fh, meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ConfigError) as err:
        read_sequence(bad)
    msg = str(err.value)
    assert str(bad) in msg and "rebuild it: python -m pipelines.scripts.build_artifact hal_digits" in msg
    assert "allow_pickle" not in msg and "\n" not in msg


def _same_metrics(a: StudyResult, b: StudyResult) -> bool:
    return json.dumps(a.metrics, sort_keys=True) == json.dumps(b.metrics, sort_keys=True)


def test_same_seed_same_metrics_and_the_contract_holds(tmp_path, seq, tiny_dict):
    save_sequence(seq, tmp_path / "seq.npz")
    config = deep_merge(tiny_dict, {"data": {"artifact": "seq"}, "rem": {"dream": "mixup+excite"}})
    arts = {"seq": tmp_path / "seq.npz"}
    first = run(config, seed=0, artifacts=arts, progress=False)
    again = run(config, seed=0, artifacts=arts, progress=False)
    other = run(config, seed=1, artifacts=arts, progress=False)
    assert _same_metrics(first, again) and first.history == again.history  # timings are not metrics
    assert first.history != other.history
    assert CONTRACT.check_metrics(first.metrics) == []
    assert {"wake_images_per_s", "merge_ms"} <= set(first.timings) and "merge_ms" not in first.metrics
    info = CONTRACT.info_of(first.info)
    assert [v.view for v in info.views] == ["task", "class"] and len(info.matrix("task")) == 2
    assert info.runs[0].sleeps == 2 and info.continual
    for p in ("til", "cil"):
        assert all(first.metrics[f"{p}_{k}"] is not None for k in ("acc", "bwt", "forgetting", "learned"))


def test_one_head_fills_both_views_from_one_run(tmp_path, seq, tiny_dict):
    save_sequence(seq, tmp_path / "seq.npz")
    config = deep_merge(tiny_dict, {"data": {"artifact": "seq"}, "scenarios": ["one-head"], "method": "er"})
    result = run(config, seed=0, artifacts={"seq": tmp_path / "seq.npz"}, progress=False)
    info = CONTRACT.info_of(result.info)
    assert len(info.runs) == 1 and [v.view for v in info.views] == ["class", "task"]
    assert CONTRACT.check_metrics(result.metrics) == [] and "merge_ms" not in result.timings  # er never merges


def test_a_view_not_run_is_declared_not_applicable(tmp_path, seq, tiny_dict):
    save_sequence(seq, tmp_path / "seq.npz")
    config = deep_merge(tiny_dict, {"data": {"artifact": "seq"}, "scenarios": ["task"], "method": "finetune"})
    result = run(config, seed=0, artifacts={"seq": tmp_path / "seq.npz"}, progress=False)
    assert result.metrics["cil_acc"] is None and result.metrics["til_acc"] is not None
    assert CONTRACT.check_metrics(result.metrics) == []


def test_missing_artifact_and_bad_keys_are_one_clear_error(tiny_dict):
    with pytest.raises(ConfigError, match="not among the artifacts this study lists in `needs`"):
        run(deep_merge(tiny_dict, {"data": {"artifact": "hal_digits"}}), seed=0, artifacts={})
    with pytest.raises(ConfigError, match="unknown key 'lrr'.*did you mean 'lr'"):
        run(deep_merge(tiny_dict, {"wake": {"lrr": 0.1}}), seed=0)
    with pytest.raises(ConfigError, match="memory.policy: 'lifo' is not one of 'reservoir', 'fifo'"):
        run(deep_merge(tiny_dict, {"memory": {"policy": "lifo"}}), seed=0)
    with pytest.raises(ConfigError, match="method: 'sgd' is not one of"):
        load_config({"method": "sgd"})
    with pytest.raises(ConfigError, match="keep: 0.0 is out of range"):
        load_config({"memory": {"keep": 0.0}})
    with pytest.raises(ConfigError, match="one-head' already gives"):
        load_config({"scenarios": ["one-head", "class"]})
    with pytest.raises(ConfigError, match="unknown key 'threads'"):
        load_config({"threads": 1})  # one knob: params.yaml resources.threads


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


def test_module_entry_point_version_and_bad_input():
    from hal_sleep_wake import __version__

    proc = _cli("--dry-run", "--set", "method=derpp")
    assert proc.returncode == 0 and "derpp: DER++" in proc.stdout
    bad = _cli("--dry-run", "--set", "wake.lrr=1")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown key 'lrr'" in bad.stderr
    version = _cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"hal-sleep-wake {__version__}"


@pytest.mark.parametrize("device", ["gpu", "cuda", "mps", "tpu"])
def test_dry_run_refuses_a_device_this_machine_lacks(device, capsys):
    from circadian_core.device import available_devices
    from hal_sleep_wake.cli import main

    if device in available_devices():
        assert main(["--dry-run", "--device", device]) == 0
        return
    assert main(["--dry-run", "--device", device]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1  # one line, no plan printed as if it could run
    assert err.startswith(f"error: --device {device}:") and "auto" in err


def test_cli_run_writes_the_record_only_where_asked(tmp_path, monkeypatch, capsys):
    from hal_sleep_wake.cli import main

    monkeypatch.chdir(tmp_path)
    small = ["--set", "data.sequence=[{name: split_digits, args: {n_tasks: 2}}]", "--set", "wake.batch_size=128",
             "--set", "wake.epochs=1", "--set", "scenarios=[task]", "--set", "sleep.rem=false",
             "--set", "model.width=4", "--set", "model.norm_groups=2", "--device", "cpu"]
    assert main([*small, "--out", str(tmp_path / "run.json")]) == 0
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["study"] == "hal" and record["contract_version"] == CONTRACT.version
    assert len(record["info"]["views"][0]["matrix"]) == 2
    assert "task-incremental accuracy matrix" in capsys.readouterr().out
    assert main(small) == 0  # no --out: printed, nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
