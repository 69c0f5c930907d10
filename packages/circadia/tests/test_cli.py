"""CLI round trip on the tiny model: chat (stdin) -> remember -> cycle -> status -> chat with the adapter."""

import io
import json
import sys

from circadia.cli import main
from circadia.testing import tiny_night_config, write_log


def test_cli_round_trip(tmp_path, tiny_model_dir, monkeypatch, capsys):
    home = tmp_path / "home"
    cfg = tiny_night_config(tiny_model_dir)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_json()))
    common = ["--home", str(home)]

    monkeypatch.setattr(sys, "stdin", io.StringIO("Hello there!\nMy password is hunter2-orange, ok?\n/exit\nnever read\n"))
    assert main([*common, "chat", "--config", str(tmp_path / "cfg.json"), "--max-tokens", "4", "--rag", "--session", "s1"]) == 0
    out = capsys.readouterr()
    assert "2 turn(s) appended" in out.err
    mem = home / "memories.jsonl"
    assert oct(mem.stat().st_mode & 0o777) == "0o600"
    rows = [json.loads(x) for x in mem.read_text().splitlines()]
    # the day log keeps nothing raw: the password was redacted before the turn was written
    assert [r["messages"][0]["content"] for r in rows] == ["Hello there!", "My password is [REDACTED:password_phrase], ok?"]
    assert b"hunter2-orange" not in mem.read_bytes()
    assert all(r["session"] == "s1" and r["source"] == "chat" for r in rows)

    log = write_log(tmp_path / "old.jsonl", [(f"Question {i}?", f"Answer {i}.") for i in range(5)])
    with open(log, "a") as fh:
        fh.write("{broken\n")
    assert main([*common, "remember", str(log)]) == 1  # a bad line is an error exit, not silence
    out = capsys.readouterr()
    assert "5 turn(s) remembered" in out.out and "old.jsonl:6" in out.err
    assert json.loads((home / "quarantine.jsonl").read_text().splitlines()[0])["line"] == 6
    assert log.read_text().endswith("{broken\n")  # the user's file is untouched

    assert main([*common, "cycle", "--config", str(tmp_path / "cfg.json"), "--quiet", "--tag", "t1"]) == 0
    brief = json.loads(capsys.readouterr().out)
    assert brief["status"] == "accepted" and brief["night"] == 1
    exp = [json.loads(x) for x in (home / "experiments.jsonl").read_text().splitlines()]
    assert len(exp) == 1 and exp[0]["tag"] == "t1" and exp[0]["memories"]["total"] == 7
    assert "hunter2-orange" not in (home / "nights/night-001/train.jsonl").read_text()

    assert main([*common, "status"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["current_adapter"] == "adapters/night-001" and st["memories"] == 7 and st["consumed_lines"] == 7

    monkeypatch.setattr(sys, "stdin", io.StringIO("One more?\n"))
    assert main([*common, "chat", "--config", str(tmp_path / "cfg.json"), "--max-tokens", "3"]) == 0
    assert "night-001" in capsys.readouterr().err
    assert len(mem.read_text().splitlines()) == 8


def test_cli_bad_config_key_names_the_fix(tmp_path, capsys):
    (tmp_path / "c.json").write_text(json.dumps({"trian": {}}))
    assert main(["--home", str(tmp_path / "h"), "cycle", "--config", str(tmp_path / "c.json")]) == 2
    assert "did you mean 'train'" in capsys.readouterr().err


def test_cli_nights(tmp_path, tiny_model_dir, capsys):
    cfg = tiny_night_config(tiny_model_dir, train={"iters": 1}, eval={"harness_per_category": 0})
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_json()))
    assert main(["--home", str(tmp_path / "h"), "nights", "2", "--config", str(tmp_path / "cfg.json"), "--quiet", "--no-dreams"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["night"] for r in lines] == [1, 2] and all(r["recall"]["probes"]["n"] > 0 for r in lines)
