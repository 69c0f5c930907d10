"""CircadianHead (torch, on the shared mechanisms): function-preserving split, exact prune and
rollback, bounded width, and every ablation switch really switching its mechanism off."""

from __future__ import annotations

import pytest
import torch

from circadian_core.config import from_dict
from circadian_vision.heads import (
    CircadianConfig,
    CircadianHead,
    PredictiveCodingConfig,
    PredictiveCodingHead,
    fit,
)
from circadian_vision.mechanisms.sleep import drop_units
from circadian_vision.mechanisms.split import split_units

D, C = 6, 3
BASE = dict(hidden=8, min_hidden=4, max_hidden=12, lr=0.1, inference_steps=3,
            trigger={"kind": "fixed", "every": 10**9}, prune={"min_age": 0}, budget={"adaptive": False})


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, D, generator=g), torch.randint(0, C, (n,), generator=g)


def _cfg(**over) -> CircadianConfig:
    cfg = {**BASE}
    for k, v in over.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return from_dict(CircadianConfig, cfg)


def _head(seed=0, **over) -> CircadianHead:
    return CircadianHead(D, C, _cfg(**over), seed=seed)


def _warm(head, steps=8):
    x, y = _data()
    for i in range(steps):
        s = i * 12 % 96
        head.train_step(x[s : s + 12], y[s : s + 12])
    return head


def _spread_chemicals(head):
    """The first two units very high usage, the last two very low, everything old enough."""
    chem = torch.full((head.hidden_width,), 0.5)
    chem[0], chem[1] = 5.0, 4.0
    chem[-2], chem[-1] = 0.01, 0.02
    head.chem_fast, head.chem_slow = chem.clone(), chem.clone()
    head.age = torch.full_like(chem, 10_000.0)


def _units(head):
    return {k: v.clone() for k, v in head.unit_state().items()}


def test_split_in_torch_preserves_the_function_to_float32_tolerance():
    head = _warm(_head())
    x, _ = _data(64, seed=1)
    before = head.logits(x)
    idx = [0, 3, 5]
    for share in (0.5, 0.3):
        W1, b1, W2 = split_units(head.W1, head.b1, head.W2, idx, share)
        h = torch.tanh(x @ W1.t() + b1)
        torch.testing.assert_close(h @ W2.t() + head.b2, before, rtol=0, atol=1e-5)
        assert W1.shape == (11, D) and torch.equal(W1[8:], head.W1[idx])
        torch.testing.assert_close(W2[:, idx] + W2[:, 8:], head.W2[:, idx], rtol=0, atol=1e-7)
    # and inside a sleep (no replay, no homeostasis): splits happen, the function is kept
    head = _warm(_head(prune={"enabled": False}, replay={"enabled": False}, homeostasis={"enabled": False}))
    _spread_chemicals(head)
    before = head.logits(x)
    event = head.sleep()
    assert event["splits"] >= 1 and head.hidden_width == 8 + event["splits"]
    torch.testing.assert_close(head.logits(x), before, rtol=0, atol=1e-5)


def test_prune_removes_exactly_the_chosen_units():
    head = _warm(_head(prune={"compensate": False}))
    old = _units(head)
    head.set_units(drop_units(head.get_units(), [2, 5], compensate=False))
    keep = [0, 1, 3, 4, 6, 7]
    assert head.hidden_width == 6
    assert torch.equal(head.W1, old["W1"][keep]) and torch.equal(head.W2, old["W2"][:, keep])
    for k in ("b1", "chem_fast", "chem_slow", "age", "mean_act", "fade_count"):
        assert torch.equal(getattr(head, k), old[k][keep]), k
    assert torch.equal(head.b2, old["b2"])
    # with compensation the pruned units' mean output contribution moves into the bias
    head = _warm(_head())
    old = _units(head)
    head.set_units(drop_units(head.get_units(), [2, 5], compensate=True))
    torch.testing.assert_close(head.b2, old["b2"] + old["W2"][:, [2, 5]] @ old["mean_act"][[2, 5]])


def test_rollback_restores_exactly(monkeypatch):
    head = _warm(_head(sleep_chemical_scale=1.0))
    head.set_holdout(*_data(30, seed=2))
    _spread_chemicals(head)
    before = _units(head)
    losses = iter([1.0, 2.0])  # the sleep makes held-out loss worse
    monkeypatch.setattr(head, "holdout_loss", lambda: next(losses))
    event = head.sleep()
    assert event["rolled_back"] and head.totals["rollbacks"] == 1 and event["splits"] >= 1
    assert head.hidden_width == 8
    for k, v in before.items():
        assert torch.equal(getattr(head, k), v), k


def test_sleep_without_rollback_keeps_its_changes(monkeypatch):
    head = _warm(_head(rollback={"enabled": False}))
    head.set_holdout(*_data(30, seed=2))
    _spread_chemicals(head)
    losses = iter([1.0, 2.0])
    monkeypatch.setattr(head, "holdout_loss", lambda: next(losses))
    event = head.sleep()
    assert not event["rolled_back"] and event["splits"] >= 1 and event["prunes"] >= 1
    assert head.hidden_width == 8 + event["splits"] - event["prunes"]


@pytest.mark.parametrize("block,counter", [("split", "splits"), ("prune", "prunes")])
def test_split_and_prune_switches(block, counter):
    on, off = _warm(_head()), _warm(_head(**{block: {"enabled": False}}))
    for h in (on, off):
        _spread_chemicals(h)
        h.sleep()  # no holdout set: the guard has nothing to decide on
    assert on.totals[counter] >= 1 and off.totals[counter] == 0


def test_replay_switch():
    kw = dict(split={"enabled": False}, prune={"enabled": False}, homeostasis={"enabled": False})
    on, off = _warm(_head(**kw)), _warm(_head(replay={"enabled": False}, **kw))
    assert on.mem_size > 0 and off.mem_size == 0
    w_on, w_off = on.W1.clone(), off.W1.clone()
    assert on.sleep()["replay_steps"] > 0 and off.sleep()["replay_steps"] == 0
    assert not torch.equal(on.W1, w_on)  # replay trained during sleep
    assert torch.equal(off.W1, w_off)  # nothing else to do in this sleep


def test_all_switches_off_is_predictive_coding_bit_for_bit():
    off = {k: {"enabled": False} for k in ("gating", "reward", "split", "prune", "homeostasis", "replay", "rollback")}
    x, y = _data()
    circ = _head(seed=4, **off)
    pc = PredictiveCodingHead(D, C, PredictiveCodingConfig(hidden=8, lr=0.1, inference_steps=3), seed=4)
    for h in (circ, pc):
        fit(h, x, y, epochs=2, batch_size=16, generator=torch.Generator().manual_seed(0))
    for k in ("W1", "b1", "W2", "b2"):
        assert torch.equal(getattr(circ, k), getattr(pc, k)), k
    # and each learning-rule switch on its own changes the result
    for block in ("gating", "reward"):
        h = _head(seed=4, **{**off, block: {"enabled": True}})
        fit(h, x, y, epochs=2, batch_size=16, generator=torch.Generator().manual_seed(0))
        assert not torch.equal(h.W1, pc.W1), block


def test_gating_scales_each_units_incoming_update():
    x, y = _data(16)
    kw = dict(reward={"enabled": False}, replay={"enabled": False})
    a = _head(gating={"adaptive": False}, **kw)
    b = _head(gating={"enabled": False}, **kw)
    chem = torch.linspace(0.0, 3.0, 8)
    for h in (a, b):
        h.chem_fast, h.chem_slow = chem.clone(), chem.clone()
    start = _units(a)
    a.train_step(x, y)
    b.train_step(x, y)
    gate = torch.exp(-a.chemical).clamp(a.ccfg.gating.p_min, 1.0)  # the chemicals this step gated with
    da, db = a.W1 - start["W1"], b.W1 - start["W1"]
    torch.testing.assert_close(da, db * gate[:, None], rtol=1e-4, atol=1e-7)
    assert not torch.allclose(da, db)
    torch.testing.assert_close(a.W2, b.W2)  # outgoing weights are not gated (gate_output: false)


def test_fixed_trigger_sleeps_on_schedule_adaptive_needs_a_plateau():
    x, y = _data()
    fixed = _head(trigger={"kind": "fixed", "every": 6})
    fit(fixed, x, y, epochs=2, batch_size=16, generator=torch.Generator().manual_seed(0))
    assert [e["step"] for e in fixed.events] == [6, 12]
    never = _head(trigger={"kind": "adaptive", "min_spacing": 1, "window": 2, "plateau_tol": -1e9})
    fit(never, x, y, epochs=2, batch_size=16, generator=torch.Generator().manual_seed(0))
    assert never.events == []  # the energy never "plateaus" under an impossible tolerance
    eager = _head(trigger={"kind": "adaptive", "min_spacing": 4, "window": 2, "plateau_tol": 1e9, "spread_min": 0.0})
    fit(eager, x, y, epochs=2, batch_size=16, generator=torch.Generator().manual_seed(0))
    steps = [e["step"] for e in eager.events]
    assert steps and all(b - a >= 4 for a, b in zip([0, *steps], steps))  # minimum spacing holds


def test_width_stays_within_bounds():
    head = _warm(_head(budget={"split": 50, "prune": 50}, max_hidden=12, min_hidden=4, split={"z": -10.0},
                       prune={"fraction": 10.0}))
    for _ in range(3):
        _spread_chemicals(head)
        head.sleep()
        assert 4 <= head.hidden_width <= 12
    assert head.stats()["hidden_max"] <= 12


def test_gradual_prune_fades_then_removes():
    head = _warm(_head(prune={"mode": "gradual", "fade": 0.5, "fade_sleeps": 2}, split={"enabled": False},
                       replay={"enabled": False}, homeostasis={"enabled": False}))
    _spread_chemicals(head)
    col = head.W2[:, -1].clone()
    head.sleep()
    assert head.hidden_width == 8 and torch.equal(head.W2[:, -1], 0.5 * col)  # marked and faded
    head.sleep()
    head.sleep()
    assert head.hidden_width < 8 and head.totals["prunes"] >= 1


def test_works_on_the_default_device_and_moves_with_the_head():
    head = _warm(_head()).to("cpu")
    assert head.chem_fast.device.type == "cpu" and head.mem_x.device.type == "cpu"
    assert {"sleeps", "splits", "prunes", "rollbacks", "hidden_start", "hidden_end", "distinct_end"} <= set(head.stats())
    assert {"wake_s", "sleep_s", "sleep_overhead"} == set(head.timings())  # wall-clock: timings, not stats


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="not one of 'adaptive', 'fixed'"):
        _cfg(trigger={"kind": "sometimes"})
    with pytest.raises(ValueError, match="min_hidden"):
        _cfg(hidden=4, min_hidden=8)
