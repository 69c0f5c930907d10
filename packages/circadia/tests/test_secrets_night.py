"""End to end: secrets pasted into a day's chat never reach memories.jsonl, train.jsonl, dreams,
the chroma store, the night's logs or anything else in the home after a full night."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest

from circadia.cli import main
from circadia.sleep.night import run_night
from circadia.testing import tiny_night_config

CORPUS = [json.loads(x) for x in (Path(__file__).parent / "corpora" / "secrets.jsonl").read_text().splitlines() if x.strip()]


def night(*args, **kwargs) -> dict:
    """``run_night`` as a dict (it returns a dict, or a typed NightRecord with ``to_json``)."""
    rec = run_night(*args, **kwargs)
    return rec.to_json() if hasattr(rec, "to_json") else rec


def _leaks(home: Path, secrets: list[str], skip: set[str] = frozenset(), extra_text: str = "") -> list[str]:
    found = []
    for s in secrets:
        pat = re.compile(rf"(?<![A-Za-z0-9]){re.escape(s)}(?![A-Za-z0-9])".encode())
        if pat.search(extra_text.encode()):
            found.append(f"{s!r} in the night's output")
        for path in home.rglob("*"):
            if path.is_file() and path.name not in skip and pat.search(path.read_bytes()):
                found.append(f"{s!r} in {path.relative_to(home)}")
    return found


@pytest.mark.slow
def test_pasted_secrets_reach_nothing_after_a_night(tmp_path, tiny_model_dir, monkeypatch, capsys):
    home = tmp_path / "home"
    cfg = tiny_night_config(tiny_model_dir, store="chroma", dreams={"bursts": 2, "per_burst": 4, "max_tokens": 12},
                            train={"iters": 6}, eval={"heldout_fraction": 0.2})
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_json()))
    common = ["--home", str(home)]
    secrets = sorted({s for c in CORPUS for s in c["secrets"]})

    # the day: ten secrets typed into the chat, every one of the corpus in an imported log (some in replies)
    typed = [c["text"].replace("\n", " ") for c in CORPUS if "\n" not in c["text"]][:10]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(typed) + "\n"))
    assert main([*common, "chat", "--config", str(tmp_path / "cfg.json"), "--max-tokens", "2", "--rag"]) == 0
    log = tmp_path / "pasted.jsonl"
    with open(log, "w") as fh:
        for i, c in enumerate(CORPUS):
            pair = (c["text"], "Noted.") if i % 3 else ("What did I paste earlier?", f"You pasted: {c['text']}")
            fh.write(json.dumps({"id": f"p{i}", "user": pair[0], "assistant": pair[1]}) + "\n")
    assert main([*common, "remember", str(log)]) == 0
    capsys.readouterr()

    assert main([*common, "cycle", "--config", str(tmp_path / "cfg.json"), "--tag", "secrets"]) == 0
    out = capsys.readouterr()
    night = json.loads(out.out)
    assert night["status"] in ("accepted", "rolled_back") and night["router"]["secrets_redacted"] >= len(CORPUS)
    assert (home / "nights/night-001/train.jsonl").exists() and any((home / "store").rglob("*.sqlite3"))
    stored = (home / "nights/night-001/train.jsonl").read_text()
    assert "[REDACTED:" in stored and "[REDACTED:" in (home / "memories.jsonl").read_text()
    assert not _leaks(home, secrets, extra_text=out.out + out.err)


@pytest.mark.slow
def test_a_raw_log_from_before_redaction_is_cleaned_by_the_night(tmp_path, tiny_model_dir):
    """memories.jsonl written raw (by an older circadia, or by hand): the night's router and the
    store's own redaction still keep every secret out of training, dreams, the store and logs."""
    from circadia.home import Home
    home = Home(tmp_path / "home").init()
    with open(home.memories, "w") as fh:  # bypasses Journal on purpose
        for i, c in enumerate(CORPUS):
            fh.write(json.dumps({"id": f"r{i}", "ts": "", "messages": [{"role": "user", "content": c["text"]},
                                                                      {"role": "assistant", "content": "Noted."}]}) + "\n")
    said = []
    cfg = tiny_night_config(tiny_model_dir, store="chroma", train={"iters": 4}, eval={"heldout_fraction": 0.0})
    rec = night(home, cfg, model_dir=tiny_model_dir, log=said.append)
    assert rec["status"] == "accepted" and rec["router"]["secrets_redacted"] >= len(CORPUS)
    secrets = sorted({s for c in CORPUS for s in c["secrets"]})
    assert not _leaks(home.root, secrets, skip={"memories.jsonl"}, extra_text="\n".join(said) + json.dumps(rec))
