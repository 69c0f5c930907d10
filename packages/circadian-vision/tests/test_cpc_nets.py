"""The NumPy networks: backprop gradients, PC inference, and the circadian wake/sleep behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from circadian_core.config import ConfigError
from circadian_vision.mechanisms.gating import gate, sensitivity_for
from circadian_vision.mechanisms.rollback import snapshot
from circadian_vision.nets import (
    NETS,
    BackpropConfig,
    BackpropMLP,
    CircadianConfig,
    CircadianNet,
    PredictiveCodingNet,
    make_net,
)
from circadian_vision.nets._common import one_hot
from circadian_vision.shift_tasks import TwoClusterConfig, two_cluster_task

QUIET = {  # a circadian net that never sleeps on its own and modulates nothing (isolates one mechanism)
    "trigger": {"kind": "fixed", "every": 10**9},
    "reward": {"enabled": False},
}


@pytest.fixture(scope="module")
def toy():
    return two_cluster_task(TwoClusterConfig(dim=4, n_train_per_class=100, n_test_per_class=200),
                            np.random.default_rng(0))


def test_registry_and_strict_configs():
    assert set(NETS) == {"backprop", "predictive_coding", "circadian"}
    net = make_net("circadian", 3, 2, {"hidden": 5, "min_hidden": 2, "gating": {"p_min": 0.3}}, seed=0)
    assert isinstance(net, CircadianNet) and net.hidden_width == 5 and net.ccfg.gating.p_min == 0.3
    with pytest.raises(ConfigError, match="unknown key 'hiden'"):
        make_net("predictive_coding", 3, 2, {"hiden": 4})
    with pytest.raises(ConfigError, match="unknown network"):
        make_net("transformer", 3, 2)
    with pytest.raises(ValueError, match="min_hidden"):
        CircadianConfig(hidden=4, min_hidden=8)


@pytest.mark.parametrize("trunk,binary", [((), False), ((4, 3), False), ((4, 3), True)])
def test_backprop_gradients_match_finite_differences(trunk, binary):
    rng = np.random.default_rng(0)
    net = BackpropMLP(3, 2, BackpropConfig(hidden=5, trunk=trunk, binary=binary), seed=1)
    x, y = rng.normal(size=(5, 3)), np.array([0, 1, 1, 0, 1])
    _, grads = net.gradients(x, y)
    assert len(grads) == len(net._params()) == 4 + 2 * len(trunk)
    for p, g in zip(net._params(), grads):
        flat = p.reshape(-1)
        for i in range(0, flat.size, max(1, flat.size // 5)):
            old = flat[i]
            flat[i] = old + 1e-6
            up = net.loss(x, y)
            flat[i] = old - 1e-6
            down = net.loss(x, y)
            flat[i] = old
            assert g.reshape(-1)[i] == pytest.approx((up - down) / 2e-6, abs=1e-7)


def test_pc_inference_lowers_the_energy(toy):
    net = PredictiveCodingNet(4, 2, seed=0)
    x, y = toy.x_train[:64], toy.y_train[:64]
    Y = one_hot(y, 2)
    e0 = net.energy(x, Y)  # at the feedforward state: prediction error 0, energy = BCE
    assert e0 == pytest.approx(net.loss(x, y))
    energies = [net.energy(x, Y, net.infer(x, Y, steps=k)[1][-1]) for k in (1, 5, 20)]
    assert e0 > energies[0] > energies[1] > energies[2]


def test_pc_learns_with_local_updates_only(toy):
    net = PredictiveCodingNet(4, 2, seed=0)
    rng = np.random.default_rng(0)
    first = net.fit_epoch(toy.x_train, toy.y_train, 32, rng)
    for _ in range(10):
        last = net.fit_epoch(toy.x_train, toy.y_train, 32, rng)
    assert last < first
    assert net.accuracy(toy.x_test, toy.y_test) > 0.8


def test_gating_scales_each_units_update_in_the_network(toy):
    net = make_net("circadian", 4, 2, {"hidden": 6, "min_hidden": 2, "max_hidden": 12, "gating": {"p_min": 0.1},
                                       **QUIET}, seed=0)
    cfg = net.ccfg
    net.chem_fast = np.array([0.0, 0.2, 0.5, 1.0, 2.0, 4.0])  # pre-set chemicals, then one wake step
    x, y = toy.x_train[:32], toy.y_train[:32]
    ref = PredictiveCodingNet(4, 2, cfg.pc(), seed=0)  # same initial weights, ungated
    settled = ref.settle(x, y)
    upd = ref.local_updates(settled)
    dW_in, db_in, dW_out = upd["W_in"][0], upd["b_in"][0], upd["W_out"][0]
    W_in0, b_in0, W_out0 = net.W_in.copy(), net.b_in.copy(), net.W_out.copy()
    from circadian_vision.mechanisms.chemicals import update_chemicals, usage

    mu = settled.mu
    fast, slow = update_chemicals(net.chem_fast, net.chem_slow, usage(mu), cfg.chemicals)
    c = (fast + slow) / 2  # dual, slow_weight 0.5
    p = gate(c, sensitivity_for(cfg.gating, net.W_out, usage(mu), net.age), cfg.gating.p_min)
    assert p.min() < 0.5 < p.max() <= 1.0
    net.train_step(x, y)
    np.testing.assert_allclose(net.W_in - W_in0, cfg.lr * p[:, None] * dW_in, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(net.b_in - b_in0, cfg.lr * p * db_in, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(net.W_out - W_out0, cfg.lr * dW_out, rtol=1e-10, atol=1e-14)  # output ungated


def _grown(toy, **over):
    base = {"hidden": 8, "min_hidden": 4, "max_hidden": 16, **QUIET, "replay": {"enabled": False},
            "homeostasis": {"enabled": False}, "rollback": {"enabled": False},
            "budget": {"split": 3, "prune": 0, "replay_steps": 0, "adaptive": False},
            "split": {"z": -10.0}}
    net = make_net("circadian", 4, 2, {**base, **over}, seed=0)
    net.set_holdout(toy.x_holdout, toy.y_holdout)
    for _ in range(3):
        net.fit_epoch(toy.x_train, toy.y_train, 32, np.random.default_rng(0))
    return net


def test_split_during_sleep_preserves_the_function(toy):
    net = _grown(toy)
    before = net.logits(toy.x_test)
    event = net.sleep()
    assert event["splits"] == 3 and net.hidden_width == 11 and not event["rolled_back"]
    assert np.max(np.abs(net.logits(toy.x_test) - before)) < 1e-12
    assert list(net.age[-3:]) == [0.0, 0.0, 0.0] and len(net.chem_fast) == 11


def test_width_stays_within_bounds(toy):
    net = _grown(toy)
    for _ in range(5):
        net.sleep()
    assert net.hidden_width == 16  # capped at max_hidden
    pruner = _grown(toy, budget={"split": 0, "prune": 5, "replay_steps": 0, "adaptive": False},
                    prune={"fraction": 10.0, "min_age": 0})
    for _ in range(3):
        pruner.sleep()
    assert pruner.hidden_width == 4  # floored at min_hidden
    assert pruner.stats()["prunes"] == 4


def test_immediate_prune_removes_the_lowest_chemical_units(toy):
    net = _grown(toy, budget={"split": 0, "prune": 2, "replay_steps": 0, "adaptive": False},
                 prune={"fraction": 10.0, "min_age": 0, "compensate": False})
    chem = net.chemical
    order = np.argsort(chem, kind="stable")
    keep = sorted(set(range(8)) - set(order[:2].tolist()))
    W_in = net.W_in.copy()
    net.sleep()
    np.testing.assert_array_equal(net.W_in, W_in[keep])


def test_gradual_prune_fades_then_removes(toy):
    net = _grown(toy, budget={"split": 0, "prune": 1, "replay_steps": 0, "adaptive": False},
                 prune={"mode": "gradual", "fraction": 10.0, "min_age": 0, "fade": 0.5, "fade_sleeps": 2})
    j = int(np.argmin(net.chemical))
    col = net.W_out[:, j].copy()
    e1 = net.sleep()
    assert e1["marked"] == 1 and e1["prunes"] == 0 and net.hidden_width == 8
    np.testing.assert_allclose(net.W_out[:, j], 0.5 * col)
    net.sleep()
    np.testing.assert_allclose(net.W_out[:, j], 0.25 * col)
    e3 = net.sleep()  # removed after fade_sleeps sleeps (and a new unit marked)
    assert e3["prunes"] == 1 and net.hidden_width == 7


def test_rollback_restores_bit_identical_weights_when_holdout_loss_rises(toy):
    # replay at a huge learning rate wrecks the network; the guard must undo the whole sleep
    net = _grown(toy, rollback={"enabled": True, "tolerance": 0.0},
                 replay={"enabled": True, "lr_scale": 500.0},
                 budget={"split": 2, "prune": 0, "replay_steps": 5, "adaptive": False})
    before = snapshot(net.state())
    event = net.sleep()
    assert event["rolled_back"] and event["holdout_loss_after"] > event["holdout_loss_before"]
    for key in ("W_in", "b_in", "W_out", "b_out", "age", "mean_act", "fade_count"):
        assert getattr(net, key).tobytes() == before[key].tobytes(), key
    assert net.stats()["rollbacks"] == 1 and net.stats()["splits"] == 0 and net.hidden_width == 8


def test_rollback_decides_on_the_holdout_not_the_test_set(toy):
    net = _grown(toy, rollback={"enabled": True, "tolerance": 0.0})
    assert len(net.holdouts) == 1
    np.testing.assert_array_equal(net.holdouts[0][0], toy.x_holdout)
    # the held-out rows are training-distribution rows disjoint from both the training rows and the test rows
    rows = {r.tobytes() for r in toy.x_holdout}
    assert not rows & {r.tobytes() for r in toy.x_train} and not rows & {r.tobytes() for r in toy.x_test}


def test_adaptive_trigger_sleeps_and_circadian_learns(toy):
    net = make_net("circadian", 4, 2, {"hidden": 8, "min_hidden": 4, "max_hidden": 32,
                                       "trigger": {"min_spacing": 10, "window": 8, "plateau_tol": 0.05,
                                                   "spread_min": 0.0}}, seed=0)
    net.set_holdout(toy.x_holdout, toy.y_holdout)
    rng = np.random.default_rng(0)
    for _ in range(10):
        net.fit_epoch(toy.x_train, toy.y_train, 16, rng)
    assert net.stats()["sleeps"] >= 1
    steps = [e["step"] for e in net.events]
    assert all(b - a >= 10 for a, b in zip(steps, steps[1:]))  # minimum spacing
    assert net.accuracy(toy.x_test, toy.y_test) > 0.8  # chance is 0.5


def test_fixed_trigger_sleeps_on_schedule(toy):
    net = make_net("circadian", 4, 2, {"hidden": 8, "trigger": {"kind": "fixed", "every": 5}}, seed=0)
    net.fit_epoch(toy.x_train[:160], toy.y_train[:160], 16, np.random.default_rng(0))  # 10 steps
    assert [e["step"] for e in net.events] == [5, 10]


def test_rollback_guard_weighs_every_held_out_slice_equally(toy):
    net = _grown(toy)
    a = (toy.x_holdout, toy.y_holdout)
    b = (toy.x_test[:2], toy.y_test[:2])  # a two-row slice, as phase B's in the hardest case
    net.set_holdouts([a, b])
    assert net.holdout_loss() == pytest.approx((net.loss(*a) + net.loss(*b)) / 2)
    pooled = net.loss(np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))
    assert net.holdout_loss() != pytest.approx(pooled)  # not the row-weighted loss, where phase A dominates
    net.set_holdouts([a, (b[0][:0], b[1][:0])])  # an empty slice is ignored
    assert net.holdout_loss() == pytest.approx(net.loss(*a))


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_split_children_diverge_only_when_the_symmetry_is_broken(toy, noise):
    # a constant gate sensitivity: the age-adaptive one would itself tell a newborn child from its parent
    net = _grown(toy, split={"z": -10.0, "noise": noise}, gating={"adaptive": False},
                 budget={"split": 1, "prune": 0, "replay_steps": 0, "adaptive": False})
    before = net.logits(toy.x_test)
    net.sleep()
    parent = int(np.flatnonzero([np.array_equal(r, net.W_in[-1]) for r in net.W_in[:-1]])[0])
    assert np.max(np.abs(net.logits(toy.x_test) - before)) < 1e-12  # function preserved either way
    assert net.distinct_units() == 8  # at birth the child is a copy of its parent's incoming row
    rng = np.random.default_rng(1)
    gaps = []
    for _ in range(4):
        net.fit_epoch(toy.x_train, toy.y_train, 32, rng)
        gaps.append(float(np.linalg.norm(net.W_in[parent] - net.W_in[-1])))
    if noise == 0.0:  # share 1/2 and no offset: identical updates forever, the child never becomes a unit
        assert gaps == [0.0] * 4
    else:  # different outgoing weights -> different inferred states -> different incoming updates
        assert 0.0 < gaps[0] < gaps[-1]


def test_replay_priority_is_the_loss_after_the_update(toy):
    net = make_net("circadian", 4, 2, {"hidden": 8, **QUIET}, seed=0)
    x, y = toy.x_train[:32], toy.y_train[:32]
    before = net.sample_loss(x, y)
    net.train_step(x, y)
    np.testing.assert_allclose(net.replay_buffer.priority[:32], net.sample_loss(x, y), rtol=1e-12)
    assert not np.allclose(net.replay_buffer.priority[:32], before)


def test_multilayer_pc_and_circadian_trunk_rules(toy):
    x, y = toy.x_train[:64], toy.y_train[:64]
    pc = make_net("predictive_coding", 4, 2, {"hidden": 6, "trunk": [5, 4], "binary": True, "init_std": 0.5}, seed=0)
    assert [W.shape for W in pc.trunk_W] == [(5, 4), (4, 5)] and pc.W_in.shape == (6, 4) and pc.W_out.shape == (1, 6)
    mus, states = pc.infer(x, pc.targets(y))
    assert all(not np.array_equal(s, m) for s, m in zip(states[1:], mus[1:]))  # every layer's state is free
    # the prototype's multi-layer PC on the prototype's own phase A (full-batch epochs, its settings)
    from circadian_vision.shift_tasks import make_shift_task

    _, task = make_shift_task({"profile": "proto-hardest"}, 3)
    pc = make_net("predictive_coding", 2, 2, {"hidden": 24, "trunk": [24, 24], "binary": True, "init_std": 0.5,
                                              "lr": 0.05, "inference_steps": 25, "inference_lr": 0.2}, seed=3)
    start = pc.loss(task.a.x_train, task.a.y_train)
    for _ in range(60):
        pc.fit_epoch(task.a.x_train, task.a.y_train, None, np.random.default_rng(0))
    assert pc.loss(task.a.x_train, task.a.y_train) < start and pc.accuracy(task.a.x_test, task.a.y_test) > 0.9
    circ = make_net("circadian", 4, 2, {"hidden": 6, "min_hidden": 2, "trunk": [5], "binary": True, **QUIET}, seed=0)
    assert circ.cfg.trunk_rule == "backprop"  # the prototype's circadian trunk learns by backprop
    mus, states = circ.infer(x, circ.targets(y))
    assert states[1] is mus[1] and not np.array_equal(states[2], mus[2])  # only the adaptive layer is free
    W0 = circ.trunk_W[0].copy()
    circ.train_step(x, y)
    assert not np.array_equal(circ.trunk_W[0], W0)
    assert set(circ.predict(toy.x_test)) <= {0, 1}
