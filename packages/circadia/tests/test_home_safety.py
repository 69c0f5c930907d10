"""Weights and files: damaged adapters and state, rollback, torn writes, the OS lock, modes, retention."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from circadia.cli import main
from circadia.home import Home, HomeError, HomeLock
from circadia.journal import Journal, import_log
from circadia.recovery import current_version, rollback, versions
from circadia.sleep.night import run_night
from circadia.testing import tiny_night_config, tree_hashes, write_log

DAY = [(f"Tell me fact {i}, please.", f"Sure thing, Jordan! Fact {i}.") for i in range(6)]


def night(*args, **kwargs) -> dict:
    """``run_night`` as a dict (it returns a dict, or a typed NightRecord with ``to_json``)."""
    rec = run_night(*args, **kwargs)
    return rec.to_json() if hasattr(rec, "to_json") else rec


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory, tiny_model_dir):
    """A home after two accepted nights (adapters night-001 and night-002), built once."""
    root = tmp_path_factory.mktemp("two-nights")
    home = Home(root / "home").init()
    for d in (1, 2):
        import_log(write_log(root / f"day{d}.jsonl", [(f"{u} (day {d})", a) for u, a in DAY]), Journal(home.memories))
        cfg = tiny_night_config(tiny_model_dir, dreams={"enabled": False}, eval={"harness_per_category": 0}, train={"iters": 2})
        assert night(home, cfg, model_dir=tiny_model_dir, log=None)["status"] == "accepted"
    return home.root


@pytest.fixture
def home2(two_nights, tmp_path):
    shutil.copytree(two_nights, tmp_path / "home")
    return Home(tmp_path / "home")


class NoLoad:
    """A backend that must never be reached: damaged files are errors before any model is loaded."""

    name = "noload"
    loaded = None

    def load(self, *a, **k):
        raise AssertionError("a model was loaded")


def _fill_nan(adapter_dir):
    import torch
    from safetensors.torch import load_file, save_file

    f = adapter_dir / "adapter_model.safetensors"
    tensors = load_file(str(f))
    name = next(k for k in tensors if "lora_B" in k)
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(f))


def test_nan_adapter_on_disk_falls_back_to_the_last_good_version(home2, tiny_model_dir, tmp_path):
    _fill_nan(home2.adapter_dir(2))
    said = []
    done = home2.recover(said.append)
    state = home2.load_state()
    assert state.current_adapter == "adapters/night-001" and state.history[-1]["status"] == "fallback"
    assert "non-finite" in done[0] and said == done and not home2.adapter_dir(2).exists()
    assert list((home2.adapters / "corrupt").glob("night-002-*"))
    # and the home keeps working: the next night trains on top of night 1
    import_log(write_log(tmp_path / "day3.jsonl", DAY[:3]), Journal(home2.memories))
    rec = night(home2, tiny_night_config(tiny_model_dir), model_dir=tiny_model_dir, log=None)
    assert rec["status"] == "accepted" and rec["previous_adapter"] == "adapters/night-001"


@pytest.mark.parametrize("damage,names", [
    ("truncate", "adapter_model.safetensors"),
    ("config", "adapter_config.json"),
    ("state", "state.json"),
])
def test_damaged_files_are_one_error_naming_the_file_before_loading(home2, tiny_model_dir, damage, names):
    if damage == "truncate":
        f = home2.adapter_dir(2) / "adapter_model.safetensors"
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif damage == "config":
        (home2.adapter_dir(2) / "adapter_config.json").write_text('{"r": 8, "lora_alpha":')
    else:
        home2.state_path.write_text('{"nights": 2, "current_adapter": ')
    before = tree_hashes(home2.root / "adapters")
    with pytest.raises(HomeError) as err:
        night(home2, tiny_night_config(tiny_model_dir), model_dir=tiny_model_dir, backend=NoLoad(), log=None)
    msg = str(err.value)
    assert names in msg and ("circadia rollback" in msg or "move it aside" in msg), msg
    assert tree_hashes(home2.root / "adapters") == before  # nothing moved or lost


def test_state_json_with_a_wrong_type_names_the_key(home2):
    state = json.loads(home2.state_path.read_text())
    home2.state_path.write_text(json.dumps({**state, "consumed_lines": "twelve"}))
    with pytest.raises(HomeError, match=r"state\.json\.consumed_lines: expected int"):
        home2.load_state()


def test_rollback_command(home2, capsys):
    common = ["--home", str(home2.root)]
    assert [v.night for v in versions(home2)] == [0, 1, 2]
    assert main([*common, "rollback"]) == 0 and "version 1" in capsys.readouterr().out
    assert home2.load_state().current_adapter == "adapters/night-001"
    assert main([*common, "rollback", "base"]) == 0
    state = home2.load_state()
    assert (state.current_adapter, state.base_model) == (None, None) and current_version(home2, state).night == 0
    assert main([*common, "rollback"]) == 2 and "already at the base model" in capsys.readouterr().err
    assert main([*common, "rollback", "2"]) == 0 and home2.load_state().current_adapter == "adapters/night-002"
    assert main([*common, "rollback", "7"]) == 2 and "versions: 0, 1, 2" in capsys.readouterr().err
    assert [h["status"] for h in home2.load_state().history[-3:]] == ["rollback"] * 3
    _fill_nan(home2.adapter_dir(1))
    with pytest.raises(HomeError, match="version 1 is unusable"):
        rollback(home2, 1)


def test_status_reports_versions(home2, capsys):
    assert main(["--home", str(home2.root), "status"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["version"] == 2 and st["versions"] == [0, 1, 2]


# ----------------------------------------------------------------------------- torn writes


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:7])))  # 7 bytes at a time
    j = Journal(tmp_path / "memories.jsonl")
    turn = j.record([{"role": "user", "content": "x" * 6000}, {"role": "assistant", "content": "ok"}])
    monkeypatch.undo()
    turns, _, res = j.read()
    assert not res.bad and turns[0].id == turn.id and len(turns[0].user) == 6000


def test_a_full_disk_leaves_no_torn_turn(tmp_path, monkeypatch):
    j = Journal(tmp_path / "memories.jsonl")
    j.record([{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"}])
    before = j.path.read_bytes()
    real, calls = os.write, []

    def disk_fills(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real(fd, bytes(data[:4096]))  # the disk takes 4,096 bytes ...
        raise OSError(errno.ENOSPC, "No space left on device")  # ... and then no more

    monkeypatch.setattr(os, "write", disk_fills)
    with pytest.raises(OSError, match="No space left"):
        j.record([{"role": "user", "content": "y" * 6000}, {"role": "assistant", "content": "ok"}])
    monkeypatch.undo()
    assert j.path.read_bytes() == before  # cut back: no torn line
    j.record([{"role": "user", "content": "third"}, {"role": "assistant", "content": "ok"}])
    assert [t.user for t in j.read()[0]] == ["first", "third"] and not j.read()[2].bad


# ----------------------------------------------------------------------------- the lock

HOLD = textwrap.dedent("""
    import sys, time
    from circadia.home import Home, HomeLock
    with HomeLock(Home(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(60)
""")

RACE = textwrap.dedent("""
    import sys, time
    from circadia.home import Home, HomeLock
    while time.time() < float(sys.argv[2]):
        pass
    try:
        with HomeLock(Home(sys.argv[1])):
            print("got", flush=True)
            time.sleep(1.5)
    except HomeLock.Busy:
        print("busy", flush=True)
""")


def test_lock_is_refused_while_held_and_free_after_a_kill(tmp_path):
    home = Home(tmp_path / "h").init()
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(home.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(HomeLock.Busy, match=f"in use by process {proc.pid}"):
            with HomeLock(home):
                pass
        os.kill(proc.pid, signal.SIGKILL)  # a killed night: no stale lock to break by hand
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    with HomeLock(home):
        with pytest.raises(HomeLock.Busy):  # a second night in the same process is refused too
            with HomeLock(home):
                pass


def test_racing_nights_get_the_lock_exactly_once(tmp_path):
    home = Home(tmp_path / "h").init()
    start = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(home.root), str(start)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outs == ["busy", "busy", "busy", "got"]


# ----------------------------------------------------------------------------- modes


def test_existing_shared_home_keeps_its_mode_and_private_files(tmp_path, tiny_model_dir):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    assert main(["--home", str(shared), "remember", str(write_log(tmp_path / "d.jsonl", DAY))]) == 0
    night(shared, tiny_night_config(tiny_model_dir, store="chroma"), model_dir=tiny_model_dir, log=None)
    assert oct(shared.stat().st_mode & 0o777) == "0o755"  # never chmodded
    for sub in ("adapters", "nights", "models", "store"):
        assert oct((shared / sub).stat().st_mode & 0o777) == "0o700", sub  # folders circadia created
    chat_files = [shared / "memories.jsonl", shared / "state.json", *shared.glob("nights/*/*.jsonl"), *(shared / "store").rglob("*")]
    loose = [str(p) for p in chat_files if p.is_file() and p.stat().st_mode & 0o077]
    assert len(chat_files) >= 5 and not loose
    assert any(p.name.endswith(".sqlite3") for p in (shared / "store").rglob("*"))  # chroma's own files are covered
    fresh = tmp_path / "fresh" / "home"
    Home(fresh).init()
    assert oct(fresh.stat().st_mode & 0o777) == "0o700" and oct(fresh.parent.stat().st_mode & 0o777) == "0o700"


# ----------------------------------------------------------------------------- a kill during --merge

class Killed(BaseException):
    """Stands for SIGKILL: nothing in circadia catches it, so no cleanup code of the night runs."""


def test_a_kill_during_merge_leaves_no_model_copy(tmp_path, tiny_model_dir, monkeypatch):
    import circadia.models.embedded as embedded

    home = Home(tmp_path / "h").init()
    import_log(write_log(tmp_path / "d.jsonl", DAY), Journal(home.memories))
    cfg = tiny_night_config(tiny_model_dir, merge=True, dreams={"enabled": False}, eval={"harness_per_category": 0})

    def killed(path):  # the merged weights are on disk, the merge is not finished
        raise Killed()

    monkeypatch.setattr(embedded, "fix_config_for_mlx", killed)
    with pytest.raises(Killed):
        night(home, cfg, model_dir=tiny_model_dir, log=None)
    monkeypatch.undo()
    leaked = [p.name for p in home.models.iterdir()]
    assert any(n.endswith(".merging") for n in leaked), leaked  # the kill really hit mid-merge
    assert home.load_state().nights == 0  # the night never counted
    said = []
    home.recover(said.append)
    assert not list(home.models.iterdir()) and any(".merging" in s for s in said)
    assert not any(".merging" in p.name or p.name.startswith(".tmp") for p in home.root.rglob("*"))
    rec = night(home, cfg, model_dir=tiny_model_dir, log=None)
    assert rec["status"] == "accepted" and [p.name for p in home.models.iterdir()] == ["night-001"]


# ----------------------------------------------------------------------------- retention


def test_retention_deletes_old_slept_on_turns_only(tmp_path, tiny_model_dir):
    from circadia.retention import apply_retention

    home = Home(tmp_path / "h").init()
    j = Journal(home.memories)
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=40)).isoformat()
    src = tmp_path / "old.jsonl"
    src.write_text("".join(json.dumps({"id": f"o{i}", "ts": old, "user": f"old secret plan {i}", "assistant": "ok"}) + "\n"
                           for i in range(5)))
    import_log(src, j)
    assert night(home, tiny_night_config(tiny_model_dir), model_dir=tiny_model_dir, log=None)["status"] == "accepted"
    import_log(write_log(tmp_path / "new.jsonl", DAY[:3]), j)  # today's turns, not slept on yet
    src2 = tmp_path / "old2.jsonl"  # old but not slept on: kept until a night has seen it
    src2.write_text(json.dumps({"id": "o9", "ts": old, "user": "old unslept", "assistant": "ok"}) + "\n")
    import_log(src2, j)
    lines = j.count()
    assert apply_retention(home, 30) == 5 and j.count() == lines  # blanked, line numbers unchanged
    text = home.memories.read_text()
    assert "old secret plan" not in text and "old unslept" in text and "fact 2" in text
    assert oct(home.memories.stat().st_mode & 0o777) == "0o600"
    rec = night(home, tiny_night_config(tiny_model_dir, retention_days=30), model_dir=tiny_model_dir, log=None)
    assert rec["memories"]["new"] == 4 and rec["memories"]["total"] == 4
    assert apply_retention(home, 30) == 1  # now slept on: the old one goes too
