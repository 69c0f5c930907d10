"""One night end to end on the tiny model: rollback, NaN abort, killed sleep, held-out split."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from circadia.backends.torch_backend import TorchBackend
from circadia.evaluation import is_heldout
from circadia.home import Home
from circadia.journal import Journal, import_log
from circadia.sleep.night import run_night
from circadia.testing import tiny_night_config, tree_hashes, write_log

TURNS = [(f"Tell me fact {i}, please.", f"Sure thing, Jordan! Fact {i} is that the sky is blue.") for i in range(12)]
TURNS2 = [(f"What about topic {i}?", f"Sure thing, Jordan! Topic {i} is interesting.") for i in range(12)]


def _home_with_night1(tmp_path, tiny_model_dir):
    home = Home(tmp_path / "home")
    home.init()
    import_log(write_log(tmp_path / "day1.jsonl", TURNS), Journal(home.memories))
    rec = run_night(home, tiny_night_config(tiny_model_dir), model_dir=tiny_model_dir, log=None)
    assert rec.status == "accepted"
    import_log(write_log(tmp_path / "day2.jsonl", TURNS2), Journal(home.memories))
    return home


def test_first_night_versions_adapter_and_logs(tmp_path, tiny_model_dir):
    home = _home_with_night1(tmp_path, tiny_model_dir)
    state = home.load_state()
    assert state.current_adapter == "adapters/night-001" and state.nights == 1
    assert (home.root / "adapters/night-001/adapter_model.safetensors").exists()
    rows = [json.loads(x) for x in home.experiments.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["pre"]["heldout_loss"] is not None and rows[0]["post"]["harness"] is not None
    # held-out chats are never in the training file
    trained = {json.loads(x).get("meta", {}).get("turn") for x in (home.night_dir(1) / "train.jsonl").read_text().splitlines()}
    held = {f"day1-{i}" for i in range(12) if is_heldout(f"day1-{i}", 0.2)}
    assert held and not (held & trained)
    assert rows[0]["memories"]["heldout_total"] == len(held)


def test_rollback_restores_previous_adapter_byte_for_byte(tmp_path, tiny_model_dir):
    home = _home_with_night1(tmp_path, tiny_model_dir)
    before = tree_hashes(home.root / "adapters" / "night-001")
    # any drop (even none) triggers: max drop -1
    cfg = tiny_night_config(tiny_model_dir, rollback={"max_capability_drop": -1.0}, train={"lr": 5e-2})
    rec = run_night(home, cfg, model_dir=tiny_model_dir, log=None)
    assert rec.status == "rolled_back" and rec.rollback_reasons
    state = home.load_state()
    assert state.current_adapter == "adapters/night-001"
    assert tree_hashes(home.root / "adapters" / "night-001") == before
    assert (home.root / "adapters/rejected/night-002/adapter_model.safetensors").exists()
    assert not (home.root / "adapters" / "night-002").exists()
    # the no-rollback ablation accepts the same night
    rec = run_night(home, tiny_night_config(tiny_model_dir, rollback={"enabled": False, "max_capability_drop": -1.0}),
                    model_dir=tiny_model_dir, log=None)
    assert rec.status == "skipped"  # memories were consumed by the rolled-back night


class NaNBackend(TorchBackend):
    def _trainable(self, cfg):
        model = super()._trainable(cfg)
        with torch.no_grad():
            next(p for n, p in model.named_parameters() if "lora_B" in n).fill_(float("nan"))
        return model


def test_nan_aborts_the_night_and_keeps_yesterday(tmp_path, tiny_model_dir):
    home = _home_with_night1(tmp_path, tiny_model_dir)
    before = tree_hashes(home.root / "adapters")
    state0 = home.load_state()
    rec = run_night(home, tiny_night_config(tiny_model_dir), model_dir=tiny_model_dir, backend=NaNBackend(device="cpu"), log=None)
    assert rec.status == "aborted_nan"
    state = home.load_state()
    assert state.current_adapter == "adapters/night-001" and state.nights == 1
    assert state.consumed_lines == state0.consumed_lines  # the day's memories wait for the next night
    assert tree_hashes(home.root / "adapters") == before
    # the next night sleeps on them normally
    rec = run_night(home, tiny_night_config(tiny_model_dir), model_dir=tiny_model_dir, log=None)
    assert rec.status == "accepted" and rec.night == 2 and home.load_state().current_adapter == "adapters/night-002"


def test_killed_sleep_leaves_previous_adapter_and_logs_intact(tmp_path, tiny_model_dir):
    home = _home_with_night1(tmp_path, tiny_model_dir)
    adapters = tree_hashes(home.root / "adapters")
    keep = {p: (home.root / p).read_bytes() for p in ("state.json", "experiments.jsonl", "memories.jsonl")}
    cfg = tiny_night_config(tiny_model_dir, train={"iters": 100000})
    (tmp_path / "long.json").write_text(json.dumps(cfg.to_json()))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "circadia", "--home", str(home.root), "cycle", "--config", str(tmp_path / "long.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (home.night_dir(2) / "train.jsonl").exists():
            time.sleep(0.2)
        assert (home.night_dir(2) / "train.jsonl").exists(), "night 2 never started training"
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert {p: h for p, h in tree_hashes(home.root / "adapters").items() if not p.startswith(".tmp-")} == adapters
    for p, data in keep.items():
        assert (home.root / p).read_bytes() == data, p
    # the next night cleans up and completes
    rec = run_night(home, tiny_night_config(tiny_model_dir), model_dir=tiny_model_dir, log=None)
    assert rec.status == "accepted" and rec.night == 2
    assert not list((home.root / "adapters").glob(".tmp-*"))


def test_small_log_and_empty_night(tmp_path, tiny_model_dir):
    home = Home(tmp_path / "h")
    home.init()
    import_log(write_log(tmp_path / "one.jsonl", [("Only one turn today.", "Sure thing, Jordan!")]), Journal(home.memories))
    cfg = tiny_night_config(tiny_model_dir, eval={"heldout_fraction": 0.0}, train={"batch_size": 4})
    rec = run_night(home, cfg, model_dir=tiny_model_dir, log=None)
    assert rec.status == "accepted" and rec.mix.n_total == 3 * 4
    rec = run_night(home, cfg, model_dir=tiny_model_dir, log=None)
    assert rec.status == "skipped"


def test_merge_moves_base(tmp_path, tiny_model_dir):
    home = Home(tmp_path / "h")
    home.init()
    import_log(write_log(tmp_path / "d.jsonl", TURNS[:4]), Journal(home.memories))
    rec = run_night(home, tiny_night_config(tiny_model_dir, merge=True), model_dir=tiny_model_dir, log=None)
    state = home.load_state()
    assert rec.status == "accepted" and state.base_model == "models/night-001" and state.current_adapter is None
    assert (home.root / "models/night-001/config.json").exists()


@pytest.mark.parametrize("bad", ["not json at all", '{"messages": []}'])
def test_corrupt_memory_line_is_quarantined_not_dropped(tmp_path, tiny_model_dir, bad):
    home = Home(tmp_path / "h")
    home.init()
    j = Journal(home.memories)
    import_log(write_log(tmp_path / "d.jsonl", TURNS[:3]), j)
    with open(home.memories, "a") as fh:
        fh.write(bad + "\n")
    import_log(write_log(tmp_path / "e.jsonl", TURNS[3:5]), j)
    rec = run_night(home, tiny_night_config(tiny_model_dir), model_dir=tiny_model_dir, log=None)
    assert rec.memories.total == 5 and rec.memories.corrupt_lines[0].endswith(tuple(["invalid JSON (Expecting value at column 1)", "or 'user' + 'assistant'"]))
    assert ":4:" in rec.memories.corrupt_lines[0]
    q = [json.loads(x) for x in (home.root / "memories.quarantine.jsonl").read_text().splitlines()]
    assert q[0]["line"] == 4 and q[0]["raw"] == bad
