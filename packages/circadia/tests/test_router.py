"""Router decisions on a fixed table of turns: what also goes verbatim to the store, and why."""

import json

import pytest

from circadia.journal import Turn
from circadia.router import RouterConfig, route

A = "Okay."
TABLE = [
    # (user, assistant, to_store, reason kinds that must be present)
    ("How are you today?", "I'm well, thanks!", False, set()),
    ("Please keep answers short.", "Will do.", False, set()),
    ("I prefer metric units.", "Metric from now on.", False, set()),
    ("My sister's name is Lena.", "Nice name!", False, set()),
    ("Fix this:\n```python\nprint('x')\n```", A, True, {"code"}),
    ("def add(a, b):\n    return a + b\nwhy does this fail?", A, True, {"code"}),
    ("SELECT name FROM users WHERE id = 3;", A, True, {"code"}),
    ("Docs are at https://example.org/docs/v2", A, True, {"url"}),
    ("See www.example.com for details", A, True, {"url"}),
    ('{"status": "ok", "count": 3}', A, True, {"json"}),
    ('The reply was [{"id": 1, "name": "a"}] today', A, True, {"json"}),
    ("x" * 700, A, True, {"long"}),
    ("Server 10.0.0.12 port 8443, backup 10.0.0.13 port 8444", A, True, {"numeric"}),
    ("Budget: rent 1450, food 420, gym 39, bus 95", A, True, {"numeric"}),
    ("Can you tell me why def add(a, b): return a + b gives None?", A, True, {"code"}),  # inline code after prose
    ("I wrote function total(xs) { return xs.length } but it says undefined", A, True, {"code"}),
    ("In class today: we learned about fractions.", A, False, set()),  # prose, not a class statement
    ("I have 2 cats.", A, False, set()),
    ("Meet at 5?", "Sure, 5 works.", False, set()),
]


@pytest.mark.parametrize("user,assistant,to_store,kinds", TABLE)
def test_router_table(user, assistant, to_store, kinds):
    turn = Turn(id="t", messages=[{"role": "user", "content": user}, {"role": "assistant", "content": assistant}])
    _, dec = route(turn, RouterConfig())
    assert dec.to_store is to_store, dec.reasons
    assert dec.to_lora and dec.quarantine is None  # every routed turn trains LoRA, stored or not
    got = {r.split("(")[0] for r in dec.reasons}
    assert kinds <= got
    assert dec.reasons  # always logged with a reason


def test_routing_disabled_sends_nothing_to_store():
    turn = Turn(id="t", messages=[{"role": "user", "content": "https://example.org ```x```"}, {"role": "assistant", "content": A}])
    _, dec = route(turn, RouterConfig(enabled=False))
    assert dec.to_store is False and dec.to_lora is True
    assert "routing disabled" in dec.reasons[0]


def test_route_redacts_before_anything_else():
    turn = Turn(id="t", messages=[{"role": "user", "content": "key AKIAIOSFODNN7EXAMPLE at https://x.org"}, {"role": "assistant", "content": A}])
    clean, dec = route(turn, RouterConfig())
    assert "AKIAIOSFODNN7EXAMPLE" not in clean.text()
    assert dec.secrets == ["aws_access_key"] and dec.to_store


def test_to_lora_is_false_only_for_a_quarantined_turn(monkeypatch):
    """to_lora means something: a turn the router could not handle does not train (nor is stored)."""
    import circadia.router as router

    def boom(text, cfg):
        raise RuntimeError("classifier exploded")

    monkeypatch.setattr(router, "classify_text", boom)
    turn = Turn(id="t9", messages=[{"role": "user", "content": "secret AKIAIOSFODNN7EXAMPLE"}, {"role": "assistant", "content": A}])
    clean, dec = route(turn, RouterConfig())
    assert dec.to_lora is False and dec.to_store is False
    assert dec.quarantine == "RuntimeError: classifier exploded" and dec.reasons[0].startswith("quarantined")
    assert clean.messages == [] and "AKIA" not in json.dumps(dec.to_json())
