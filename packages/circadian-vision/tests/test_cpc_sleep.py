"""The one sleep cycle (mechanisms.sleep) that the NumPy network and the torch head both run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from circadian_vision.heads.circadian import CircadianHead
from circadian_vision.mechanisms.sleep import UNIT_VECTORS, Units, sleep_cycle
from circadian_vision.nets.circadian import CircadianConfig, CircadianNet

_BASE = CircadianConfig()
CFG = dataclasses.replace(_BASE, hidden=6, min_hidden=2, max_hidden=12, split=dataclasses.replace(_BASE.split, z=0.0, noise=0.05),
                          prune=dataclasses.replace(_BASE.prune, min_age=0, fraction=0.9),
                          budget=dataclasses.replace(_BASE.budget, split=2, prune=1, replay_steps=0,
                                                     adaptive=False))


class FakeHost:
    """A minimal SleepHost over NumPy arrays or torch tensors, with a scripted held-out loss."""

    def __init__(self, units: Units, losses: list[float | None], eps: np.ndarray, torch_kind: bool) -> None:
        self.units, self.losses, self.eps, self.torch_kind = units, list(losses), eps, torch_kind
        self.replayed = 0

    def get_units(self) -> Units:
        return self.units

    def set_units(self, units: Units) -> None:
        self.units = units

    def state_snapshot(self) -> Units:
        return dataclasses.replace(self.units, vectors=dict(self.units.vectors))

    def state_restore(self, snap: Units) -> None:
        self.units = snap

    def holdout_loss(self) -> float | None:
        return self.losses.pop(0)

    def replay(self, steps: int) -> int:
        self.replayed += steps
        return steps

    def standard_normal(self, rows: int, cols: int):
        e = self.eps[:rows, :cols]
        return torch.tensor(e) if self.torch_kind else e.copy()


def _units(torch_kind: bool) -> Units:
    rng = np.random.default_rng(0)
    arrays = {"W_in": rng.normal(size=(6, 4)), "b_in": rng.normal(size=6), "W_out": rng.normal(size=(3, 6)),
              "b_out": rng.normal(size=3)}
    vectors = {"chem_fast": np.array([0.1, 2.0, 0.3, 1.5, 0.01, 0.4]), "chem_slow": np.zeros(6),
               "age": np.full(6, 500.0), "mean_act": rng.normal(size=6), "fade_count": np.zeros(6)}
    conv = (lambda a: torch.tensor(a)) if torch_kind else (lambda a: a)
    return Units(**{k: conv(v) for k, v in arrays.items()}, vectors={k: conv(v) for k, v in vectors.items()})


def _np(u: Units) -> dict[str, np.ndarray]:
    def f(a):
        return a.numpy() if isinstance(a, torch.Tensor) else a
    return {"W_in": f(u.W_in), "b_in": f(u.b_in), "W_out": f(u.W_out), "b_out": f(u.b_out),
            **{k: f(v) for k, v in u.vectors.items()}}


def test_numpy_and_torch_hosts_sleep_identically():
    eps = np.random.default_rng(1).normal(size=(3, 4))
    hosts = [FakeHost(_units(t), [1.0, 1.0], eps, t) for t in (False, True)]
    events = [sleep_cycle(h, CFG) for h in hosts]
    assert events[0] == events[1]
    assert events[0]["splits"] == 2 and events[0]["prunes"] == 1 and events[0]["hidden_after"] == 7
    a, b = (_np(h.units) for h in hosts)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-12, err_msg=k)
    # the split units (highest chemicals: 1 and 3) got children; the pruned one (4, lowest) is gone
    assert set(UNIT_VECTORS) == set(hosts[0].units.vectors)
    np.testing.assert_allclose(a["chem_fast"][:2], [0.1 * 0.5, 2.0 * 0.5 * 0.5], rtol=1e-12)  # halved, then slept


def test_rollback_restores_the_snapshot_when_the_held_out_loss_rises():
    eps = np.random.default_rng(1).normal(size=(3, 4))
    host = FakeHost(_units(False), [1.0, 1.5], eps, False)  # loss up 50% > tolerance 2%
    before = _np(host.units)
    event = sleep_cycle(host, CFG)
    assert event["rolled_back"] and event["hidden_after"] == 6
    after = _np(host.units)
    for k in before:
        expected = CFG.sleep_chemical_scale * before[k] if k in ("chem_fast", "chem_slow") else before[k]
        np.testing.assert_array_equal(after[k], expected, err_msg=k)
    kept = FakeHost(_units(False), [1.0, 1.01], eps, False)  # within tolerance: kept
    assert not sleep_cycle(kept, CFG)["rolled_back"]


def test_a_sleep_outside_the_progress_windows_is_skipped():
    cfg = dataclasses.replace(CFG, budget=dataclasses.replace(CFG.budget, prune=0, split_until=0.85))
    host = FakeHost(_units(False), [1.0, 1.0, 1.0], np.zeros((3, 4)), False)
    before = _np(host.units)
    event = sleep_cycle(host, cfg, progress=0.9)
    assert event["skipped"] and event["splits"] == 0 and host.replayed == 0
    for k, v in _np(host.units).items():
        np.testing.assert_array_equal(v, before[k])
    assert not sleep_cycle(host, cfg, progress=0.5)["skipped"]


def test_net_and_head_are_sleep_hosts_of_the_same_cycle():
    net = CircadianNet(4, 3, CFG, seed=0)
    head = CircadianHead(4, 3, CFG, seed=0)
    for learner in (net, head):
        units = learner.get_units()
        assert units.width == 6 and set(units.vectors) == set(UNIT_VECTORS)
        learner.set_units(units)
        event = learner.sleep()
        assert {"splits", "prunes", "rolled_back", "skipped", "hidden_after"} <= set(event)
        assert learner.stats()["distinct_end"] <= learner.stats()["hidden_end"]
    with pytest.raises(ValueError, match="NumPy CircadianNet only"):
        CircadianHead(4, 3, dataclasses.replace(CFG, trunk=(4,)), seed=0)
