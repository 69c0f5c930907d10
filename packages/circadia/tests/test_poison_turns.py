"""One bad turn stops nothing: undecodable lines, unroutable and untokenizable turns, long turns."""

from __future__ import annotations

import json

from circadia.backends.base import Example, reply_window, tokenize_chat
from circadia.backends.torch_backend import TorchBackend
from circadia.evaluation import is_heldout
from circadia.home import Home
from circadia.journal import Journal, import_log
from circadia.jsonl import read_jsonl
from circadia.sleep.batches import BatchList, build_batches
from circadia.sleep.night import run_night
from circadia.testing import tiny_night_config, write_log

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def night(*args, **kwargs) -> dict:
    """``run_night`` as a dict (it returns a dict, or a typed NightRecord with ``to_json``)."""
    rec = run_night(*args, **kwargs)
    return rec.to_json() if hasattr(rec, "to_json") else rec


def test_non_utf8_and_lone_surrogates_are_quarantined_with_line_numbers(tmp_path):
    p = tmp_path / "memories.jsonl"
    surrogate = '{"messages": [{"role": "user", "content": "bad \\ud800 text"}, {"role": "assistant", "content": "x"}]}'
    p.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"user": "caf\xe9", "assistant": "ok"}\n' + surrogate.encode() + b"\n"
                  + json.dumps(GOOD).encode() + b"\n")
    res = read_jsonl(p, warn=False)
    assert res.line_numbers == [1, 4]
    assert [(b.line, b.error.split(" (")[0]) for b in res.bad] == [(2, "invalid UTF-8"), (3, "invalid text: an unpaired surrogate escape")]
    q = [json.loads(x) for x in res.quarantine.read_text().splitlines()]
    assert [e["line"] for e in q] == [2, 3] and "caf\ufffd" in q[0]["raw"]


def test_reply_window_keeps_the_reply():
    mask = [0] * 10 + [1] * 3 + [0]
    assert reply_window(mask, 5) == (9, 14)  # context cut from the left, the whole reply kept
    assert reply_window([0] * 3 + [1] * 10, 4) == (3, 7)  # a reply longer than the window: its start
    assert reply_window([0] * 10, 4) == (6, 10)


def test_long_context_keeps_reply_tokens(tiny_tokenizer):
    msgs = [{"role": "user", "content": "word " * 2000}, {"role": "assistant", "content": "Sure thing, Jordan!"}]
    ids, mask = tokenize_chat(tiny_tokenizer, msgs, max_seq_len=64)
    assert len(ids) == 64 and sum(mask) >= 5
    assert tiny_tokenizer.decode([t for t, m in zip(ids, mask) if m]).startswith("Sure thing, Jordan!")


class _Poisoned:
    """A tokenizer that fails on one marker (anything else is the real tokenizer)."""

    def __init__(self, real, marker):
        self._real, self._marker = real, marker

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __call__(self, text, *a, **k):
        if self._marker in text:
            raise ValueError("tokenizer cannot handle this text")
        return self._real(text, *a, **k)


def test_build_batches_quarantines_untokenizable_examples(tiny_tokenizer):
    mem = [Example([{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}], meta={"turn": f"t{i}"})
           for i in range(4)]
    mem.append(Example([{"role": "user", "content": "POISON here"}, {"role": "assistant", "content": "x"}], meta={"turn": "bad"}))
    mem.append(Example([{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}], meta={"turn": "empty"}))
    batches = build_batches(mem, [], [], iters=4, batch_size=2, replay_fraction=0.0, seed=0,
                            tokenizer=_Poisoned(tiny_tokenizer, "POISON"), max_seq_len=64)
    assert isinstance(batches, BatchList) and isinstance(batches, list) and len(batches) == 4
    assert {(q.turn, q.stage) for q in batches.quarantined} >= {("bad", "tokenize")}
    assert "ValueError: tokenizer cannot handle this text" in next(q.error for q in batches.quarantined if q.turn == "bad")
    assert all(e.meta["turn"] != "bad" for b in batches for e in b)
    assert build_batches(mem, [], [], iters=2, batch_size=2, replay_fraction=0.0, seed=0).quarantined == []


class PoisonBackend(TorchBackend):
    def load(self, model_dir, adapter_dir=None):
        super().load(model_dir, adapter_dir)
        self.tokenizer = _Poisoned(self.tokenizer, "TOKENIZER-POISON")


def _poison_day(path):
    turns = [(f"Tell me fact {i}, please.", f"Sure thing, Jordan! Fact {i}.") for i in range(8)]
    turns += [("[" * 2048, "That is a lot of brackets."), ("TOKENIZER-POISON " + "x" * 50, "Odd."),
              ("ROUTER-POISON please", "Hm."), ("word " * 1500 + "what now?", "Sure thing, Jordan! Now rest.")]
    write_log(path, turns)
    with open(path, "ab") as fh:
        fh.write(b'{"user": "latin-1 caf\xe9", "assistant": "ok"}\n')
        fh.write(b'{"user": "surrogate \\udc80", "assistant": "ok"}\n')
    return path


def test_a_poisoned_day_stops_nothing(tmp_path, tiny_model_dir, monkeypatch):
    import circadia.router as router

    real = router.classify_text

    def classify(text, cfg):
        if "ROUTER-POISON" in text:
            raise RuntimeError("router bug")
        return real(text, cfg)

    monkeypatch.setattr(router, "classify_text", classify)
    home = Home(tmp_path / "h")
    home.init()
    j = Journal(home.memories)
    n, res = import_log(_poison_day(tmp_path / "day1.jsonl"), j)
    assert n == 12 and [b.line for b in res.bad] == [13, 14]  # imports refuse undecodable lines, with their numbers
    with open(home.memories, "ab") as fh:  # and a log damaged on disk later
        fh.write(b'{"user": "\xff\xfe", "assistant": "ok"}\n')
    # 8 steps of 2 with 20% replay: every one of the 10 trainable memories is seen
    cfg = tiny_night_config(tiny_model_dir, eval={"heldout_fraction": 0.0}, train={"max_seq_len": 64, "iters": 8},
                            dreams={"enabled": False})
    rec = night(home, cfg, model_dir=tiny_model_dir, backend=PoisonBackend(device="cpu"), log=None)
    assert rec["status"] == "accepted", rec.get("reason")
    assert any(":13: invalid UTF-8" in c for c in rec["memories"]["corrupt_lines"])
    stages = {(q["turn"], q["stage"]) for q in rec["quarantined"]}
    assert ("day1-10", "route") in stages and ("day1-9", "tokenize") in stages
    assert json.loads((home.night_dir(1) / "quarantine.jsonl").read_text().splitlines()[0])["stage"] in ("route", "tokenize")
    # to_lora means what trains: the memory examples of train.jsonl are exactly the to_lora turns
    rows = [json.loads(x) for x in (home.night_dir(1) / "router.jsonl").read_text().splitlines()]
    trained = {json.loads(x)["meta"]["turn"] for x in (home.night_dir(1) / "train.jsonl").read_text().splitlines()
               if json.loads(x)["source"] == "memory"}
    assert {r["turn_id"] for r in rows if r["to_lora"]} - {"day1-9"} == trained
    assert "day1-10" not in trained and "day1-9" not in trained and "day1-8" in trained and "day1-11" in trained
    # the next night is not troubled by yesterday's poison
    import_log(write_log(tmp_path / "day2.jsonl", [(f"And topic {i}?", "Sure thing, Jordan!") for i in range(4)]), j)
    rec2 = night(home, cfg, model_dir=tiny_model_dir, log=None)
    assert rec2["status"] == "accepted" and rec2["memories"]["new"] == 4 and not rec2["quarantined"]


def test_a_night_whose_heldout_turns_are_all_long_still_scores_them(tmp_path, tiny_model_dir):
    """Cut from the right, a long held-out turn kept no reply token and every night failed."""
    turns = [("word " * 1200 + f"question {i}?", f"Sure thing, Jordan! Answer {i}.") for i in range(8)]
    home = Home(tmp_path / "h")
    home.init()
    import_log(write_log(tmp_path / "long.jsonl", turns), Journal(home.memories))
    cfg = tiny_night_config(tiny_model_dir, eval={"heldout_fraction": 0.5}, train={"max_seq_len": 64})
    assert any(is_heldout(f"long-{i}", 0.5) for i in range(8))
    rec = night(home, cfg, model_dir=tiny_model_dir, log=None)
    assert rec["status"] == "accepted" and rec["pre"]["heldout_loss"] > 0 and rec["post"]["heldout_loss"] > 0
