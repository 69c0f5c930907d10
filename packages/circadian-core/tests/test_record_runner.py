import json
import math
import os
import stat

import numpy as np
import pytest

from circadian_core.record import StudyResult, read_record, write_json_atomic
from circadian_core.runner import resolve_entry, run_cell


def _study(config, *, seed, device, workdir, artifacts):
    rng = np.random.default_rng(seed)
    return StudyResult(
        metrics={"score": float(rng.random()), "bad": math.nan},
        history={"loss": [1.0, 0.5]},
        info={"matrix": np.eye(2)},
        timings={"train_s": 0.25},
    )


def test_atomic_write_leaves_no_temp_and_strict_json(tmp_path):
    path = write_json_atomic(tmp_path / "a" / "b.json", {"x": np.float32(1.5), "y": float("inf")})
    assert json.loads(path.read_text()) == {"x": 1.5, "y": None}
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]


def test_failed_write_keeps_previous_file(tmp_path):
    path = write_json_atomic(tmp_path / "r.json", {"ok": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_run_cell_writes_full_record(tmp_path):
    out = tmp_path / "runs" / "s" / "v" / "seed3.json"
    run_cell(_study, {"k": 1}, study="s", variant="v", seed=3, out=out, device="cpu")
    rec = read_record(out)
    assert rec["study"] == "s" and rec["variant"] == "v" and rec["seed"] == 3
    assert rec["config"] == {"k": 1}
    assert rec["metrics"]["bad"] is None
    assert rec["timings"]["train_s"] == 0.25 and rec["timings"]["wall_s"] > 0
    assert rec["device"] == "cpu"
    assert "numpy" in rec["versions"] and "python" in rec["versions"]
    assert rec["info"]["matrix"] == [[1.0, 0.0], [0.0, 1.0]]
    # same seed, same metric
    out2 = tmp_path / "again.json"
    run_cell(_study, {"k": 1}, study="s", variant="v", seed=3, out=out2, device="cpu")
    assert read_record(out2)["metrics"] == rec["metrics"]


def test_failing_study_writes_nothing(tmp_path):
    def boom(config, **_):
        raise RuntimeError("diverged")

    out = tmp_path / "x.json"
    with pytest.raises(RuntimeError, match="diverged"):
        run_cell(boom, {}, study="s", variant="v", seed=1, out=out, device="cpu")
    assert not out.exists()


def test_corrupt_record_error_names_fix(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="delete it and rerun"):
        read_record(bad)


def test_resolve_entry_errors():
    assert resolve_entry("math:sqrt")(4.0) == 2.0
    with pytest.raises(ValueError, match="package.module:function"):
        resolve_entry("math.sqrt")
    with pytest.raises(ModuleNotFoundError, match="install the package"):
        resolve_entry("no_such_pkg_xyz:run")


def test_benchmark_header_names_the_run_the_machine_and_the_time():
    import os
    import time

    from circadian_core.record import benchmark_header, cpu_name

    started = time.perf_counter() - 2.0
    head = benchmark_header("x/speed", "python benchmarks/x.py --fast", "cpu", load_before=0.5, started=started)
    assert head["benchmark"] == "x/speed" and head["command"].endswith("--fast") and head["device"] == "cpu"
    assert head["device_name"] == cpu_name() and head["device_name"]
    assert head["cpu_count"] == os.cpu_count() and head["load_average_1m_before"] == 0.5
    assert head["total_s"] >= 2.0


def test_records_get_the_usual_mode_and_private_files_0600(tmp_path):
    old = os.umask(0o022)
    try:
        plain = write_json_atomic(tmp_path / "plain.json", {"a": 1})
        private = write_json_atomic(tmp_path / "private.json", {"a": 1}, private=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE(plain.stat().st_mode) == 0o644
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_timings_never_enter_metrics(tmp_path):
    out = tmp_path / "r.json"
    run_cell(_study, {}, study="s", variant="v", seed=1, out=out, device="cpu")
    rec = read_record(out)
    assert set(rec["metrics"]) == {"score", "bad"}
    assert "timings" not in rec["info"] and rec["timings"]["train_s"] == 0.25


def test_set_threads_caps_env_and_torch(monkeypatch):
    from circadian_core.runner import set_threads

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    set_threads(None)
    assert "OMP_NUM_THREADS" not in os.environ
    set_threads(1)
    assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["OPENBLAS_NUM_THREADS"] == "1"
    torch = pytest.importorskip("torch")  # torch is an optional dependency of circadian-core
    before = torch.get_num_threads()
    try:
        set_threads(2)
        assert torch.get_num_threads() == 2 and os.environ["MKL_NUM_THREADS"] == "2"
    finally:
        torch.set_num_threads(before)


def test_require_artifact_names_the_fix(tmp_path):
    from circadian_core.config import ConfigError
    from circadian_core.runner import require_artifact

    assert require_artifact({"a": tmp_path}, "a", study="s", key="features") == tmp_path
    with pytest.raises(ConfigError, match="add 'b' to the study's `needs`"):
        require_artifact({"a": tmp_path}, "b", study="s", key="features")
