"""Poison input for the router: deep brackets, megabyte pastes, and messages over the size cap.

Timings are measured in benchmarks/circadia_router.py (JSON), not here; these tests pin the
mechanisms that made routing quadratic or recursive.
"""

from __future__ import annotations

import json
import random

from circadia.journal import Turn
from circadia.router import RouterConfig, classify_text, route


def _turn(user: str) -> Turn:
    return Turn(id="t", messages=[{"role": "user", "content": user}, {"role": "assistant", "content": "ok"}])


def minified_js(n: int, seed: int = 0) -> str:
    r = random.Random(seed)
    parts = ['function a(b){return b+1};', 'if(x){y=z(1,2)}else{q=[1,2,{"k":"v"}]};', 'var t="abc";',
             'for(var i=0;i<n;i++){s+=i};', 'a.b.c.d=e.f(g);', 'x=>x*2;', '[[[[1]]]],']
    out, size = [], 0
    while size < n:
        out.append(r.choice(parts))
        size += len(out[-1])
    return "".join(out)[:n]


def test_two_kilobytes_of_brackets_do_not_recurse():
    for text in ("[" * 2048, "{" * 2048, '{"a":' * 2048, "[" * 200_000):
        _, dec = route(_turn(text), RouterConfig())
        assert dec.quarantine is None and dec.to_lora, dec.reasons


def test_json_is_parsed_at_most_once_per_text(monkeypatch):
    """The old router called raw_decode at every '{' and '[' (quadratic in minified code)."""
    import circadia.router as router

    calls = []
    real = json.loads
    monkeypatch.setattr(router.json, "loads", lambda s, *a, **k: calls.append(len(s)) or real(s, *a, **k))
    monkeypatch.setattr(router.json.JSONDecoder, "raw_decode", lambda *a, **k: calls.append(-1) or (None, 0))
    text = minified_js(200_000)
    reasons = classify_text(text, RouterConfig())
    assert "code" in reasons and len(calls) <= 1
    assert classify_text('[{"id": 1, "name": "a"}]', RouterConfig()) == ["json"]


def test_megabyte_paste_is_capped_with_a_note():
    text = minified_js(1_000_000) + " password=Zq8v2LmN4pR7xT1k"
    clean, dec = route(_turn(text), RouterConfig(max_message_chars=20_000))
    user = clean.messages[0]["content"]
    assert len(user) < 20_200 and "only its first 20000 are kept" in user and "1000026 characters" in user
    assert any(r.startswith("capped(user 1000026>20000") for r in dec.reasons)
    assert dec.to_lora and dec.to_store and "Zq8v2LmN4pR7xT1k" not in user


def test_a_secret_straddling_the_cap_is_not_cut_in_half():
    """Redaction runs before the cut: the first half of a key never survives on its own."""
    key = "AKIA5AWFNLG79NXL9VBX"
    text = "x " * 9_995 + key + " tail"
    clean, dec = route(_turn(text), RouterConfig(max_message_chars=20_000))
    user = clean.messages[0]["content"]
    assert "AKIA" not in user and "aws_access_key" in dec.secrets


def test_every_pattern_handles_pathological_text():
    """Inputs that make naive patterns backtrack (one long word, blank lines, digits, dotted chains)."""
    cfg = RouterConfig()
    for text in ("a" * 300_000, "\n" * 300_000, "1 " * 150_000, "a." * 150_000, "'a" * 150_000, "if(" * 100_000):
        classify_text(text, cfg)
        _, dec = route(_turn(text), cfg)
        assert dec.quarantine is None
