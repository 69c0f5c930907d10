"""Durable appends and reads that quarantine corrupt lines with their line numbers."""

import json
import os

from circadia.journal import Journal, check_turn, import_log
from circadia.jsonl import append_jsonl, read_jsonl


def test_append_is_private_and_appends(tmp_path):
    p = tmp_path / "m.jsonl"
    append_jsonl(p, {"a": 1})
    append_jsonl(p, [{"a": 2}, {"a": 3}])
    assert oct(p.stat().st_mode & 0o777) == "0o600"
    assert [json.loads(x)["a"] for x in p.read_text().splitlines()] == [1, 2, 3]


def test_existing_file_is_made_private(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"a": 0}\n')
    os.chmod(p, 0o644)
    append_jsonl(p, {"a": 1})
    assert oct(p.stat().st_mode & 0o777) == "0o600"


def test_torn_last_line_does_not_swallow_the_next_record(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"a": 1}\n{"a": 2, "b"')  # a crash mid-write
    append_jsonl(p, {"a": 3})
    res = read_jsonl(p, quarantine=tmp_path / "q.jsonl", warn=False)
    assert [r["a"] for r in res.records] == [1, 3]
    assert [b.line for b in res.bad] == [2]


def test_corrupt_lines_reported_with_line_numbers_and_quarantined(tmp_path, capsys):
    p = tmp_path / "memories.jsonl"
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    lines = [json.dumps(good), "{not json", "", json.dumps({"messages": [{"role": "user", "content": "x"}]}), json.dumps(good), "[1, 2]"]
    p.write_text("\n".join(lines) + "\n")
    before = p.read_bytes()
    res = read_jsonl(p, check=check_turn)
    assert res.line_numbers == [1, 5]
    assert [b.line for b in res.bad] == [2, 4, 6]
    err = capsys.readouterr().err
    assert "memories.jsonl:2" in err and "memories.jsonl:4" in err and "memories.jsonl:6" in err
    q = [json.loads(x) for x in res.quarantine.read_text().splitlines()]
    assert [e["line"] for e in q] == [2, 4, 6]
    assert q[0]["raw"] == "{not json" and "invalid JSON" in q[0]["error"]
    assert p.read_bytes() == before  # never modified
    # reading again does not duplicate quarantine entries
    read_jsonl(p, check=check_turn, warn=False)
    assert len(res.quarantine.read_text().splitlines()) == 3


def test_journal_read_quarantines(tmp_path):
    j = Journal(tmp_path / "memories.jsonl")
    j.record([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    with open(j.path, "a") as fh:
        fh.write("garbage\n")
    j.record([{"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}])
    turns, lines, res = j.read()
    assert [t.user for t in turns] == ["a", "c"] and lines == [1, 3]
    assert res.bad[0].line == 2 and (tmp_path / "memories.quarantine.jsonl").exists()


def test_import_log_formats(tmp_path):
    src = tmp_path / "log.jsonl"
    src.write_text("\n".join([
        json.dumps({"user": "u1", "assistant": "a1"}),
        json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u2"}, {"role": "assistant", "content": "a2"}]}),
        json.dumps({"messages": [{"role": "user", "content": "u3"}, {"role": "bot", "content": "a3"}]}),
    ]) + "\n")
    j = Journal(tmp_path / "home" / "memories.jsonl")
    n, res = import_log(src, j)
    assert n == 2 and [b.line for b in res.bad] == [3]
    assert res.quarantine == j.path.with_name("quarantine.jsonl")
    turns, _, _ = j.read()
    assert [t.user for t in turns] == ["u1", "u2"] and turns[1].messages[0]["role"] == "system"
