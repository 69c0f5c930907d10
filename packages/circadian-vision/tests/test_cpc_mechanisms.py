"""The circadian mechanisms against hand-computed values, on NumPy arrays and on torch tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from circadian_vision.mechanisms import _xp
from circadian_vision.mechanisms.budget import BudgetConfig, sleep_budget
from circadian_vision.mechanisms.chemicals import (
    ChemicalConfig,
    accumulate_dual,
    accumulate_plain,
    accumulate_saturating,
    chemical_level,
    combine,
    steady_gain,
    update_chemicals,
    usage,
)
from circadian_vision.mechanisms.gating import adaptive_sensitivity, gate, gate_columns, gate_rows, importance
from circadian_vision.mechanisms.homeostasis import norm_control, row_norms
from circadian_vision.mechanisms.prune import (
    compensate_bias,
    fade_columns,
    prune_candidates,
    prune_units,
    remove_units,
)
from circadian_vision.mechanisms.replay import ReplayBuffer, replay_weights
from circadian_vision.mechanisms.reward import RewardConfig, RewardModulator, ema_update, lr_scale
from circadian_vision.mechanisms.rollback import restore, should_rollback, snapshot
from circadian_vision.mechanisms.split import (
    FUNCTION_TOLERANCE,
    SplitConfig,
    distinct_units,
    split_candidates,
    split_units,
    split_vector,
)
from circadian_vision.mechanisms.trigger import (
    PROTOTYPE_SPREAD_MIN,
    TriggerConfig,
    chemical_spread,
    energy_plateau,
    should_sleep,
    trigger_conditions,
)

KINDS = ["numpy", "torch"]


def arr(values, kind):
    a = np.asarray(values, dtype=np.float64)
    return torch.tensor(a) if kind == "torch" else a


def npy(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def same_kind(out, kind):
    assert isinstance(out, torch.Tensor) == (kind == "torch")


# ---- chemicals ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_chemical_dynamics_match_hand_computed_values(kind):
    c = arr([0.0, 1.0, 2.0], kind)
    u = arr([1.0, 0.5, 0.0], kind)
    # plain: 0.9 c + 0.1 u
    out = accumulate_plain(c, u, 0.9, 0.1)
    same_kind(out, kind)
    np.testing.assert_allclose(npy(out), [0.1, 0.95, 1.8], rtol=0, atol=1e-15)
    # saturating: 0.9 c + 0.1 u / (1 + u / 0.5)  ->  u=1: 0.1/3, u=0.5: 0.05/2
    out = accumulate_saturating(c, u, 0.9, 0.1, 0.5)
    np.testing.assert_allclose(npy(out), [0.1 / 3, 0.9 + 0.025, 1.8], rtol=0, atol=1e-15)
    # dual: fast 0.5 f + 0.5 u, slow 0.99 s + 0.01 u, combined with w = 0.25
    f, s = accumulate_dual(c, 2 * c, u, 0.5, 0.99, 0.5, 0.01)
    np.testing.assert_allclose(npy(f), [0.5, 0.75, 1.0], atol=1e-15)
    np.testing.assert_allclose(npy(s), [0.01, 1.985, 3.96], atol=1e-15)
    np.testing.assert_allclose(npy(combine(f, s, 0.25)), [0.75 * 0.5 + 0.25 * 0.01, 0.75 * 0.75 + 0.25 * 1.985,
                                                           0.75 * 1.0 + 0.25 * 3.96], atol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_chemical_modes_and_usage(kind):
    h = arr([[1.0, -2.0], [-3.0, 0.0]], kind)
    np.testing.assert_allclose(npy(usage(h)), [2.0, 1.0])
    fast, slow, u = arr([1.0, 2.0], kind), arr([4.0, 8.0], kind), arr([1.0, 1.0], kind)
    plain = ChemicalConfig(mode="plain", decay=0.5, rate=1.0)
    f2, s2 = update_chemicals(fast, slow, u, plain)
    np.testing.assert_allclose(npy(f2), [1.5, 2.0])
    np.testing.assert_array_equal(npy(s2), [4.0, 8.0])  # untouched
    np.testing.assert_array_equal(npy(chemical_level(f2, s2, plain)), [1.5, 2.0])
    dual = ChemicalConfig(mode="dual", fast_decay=0.5, fast_rate=1.0, slow_decay=0.5, slow_rate=0.0, slow_weight=0.5)
    f3, s3 = update_chemicals(fast, slow, u, dual)
    np.testing.assert_allclose(npy(chemical_level(f3, s3, dual)), [0.5 * 1.5 + 0.5 * 2.0, 0.5 * 2.0 + 0.5 * 4.0])
    # steady state of the plain dynamics: rate u / (1 - decay)
    c = arr([0.0], kind)
    for _ in range(200):
        c = accumulate_plain(c, arr([0.3], kind), 0.9, 0.1)
    assert float(c[0]) == pytest.approx(0.3, rel=1e-8)
    with pytest.raises(ValueError, match="mode"):
        ChemicalConfig(mode="bogus")  # type: ignore[arg-type]


def test_steady_gain_is_where_a_constant_usage_settles():
    proto = ChemicalConfig(mode="plain", decay=0.995, rate=0.02)  # the prototype's defaults
    assert steady_gain(proto) == pytest.approx(4.0)
    dual = ChemicalConfig(mode="dual", fast_decay=0.9, fast_rate=0.1, slow_decay=0.995, slow_rate=0.005, slow_weight=0.5)
    assert steady_gain(dual) == pytest.approx(1.0)
    fast, slow = np.zeros(1), np.zeros(1)
    for _ in range(5000):
        fast, slow = update_chemicals(fast, slow, np.array([0.3]), dual)
    assert float(chemical_level(fast, slow, dual)[0]) == pytest.approx(steady_gain(dual) * 0.3, rel=1e-6)
    with pytest.raises(ValueError, match="never settles"):
        steady_gain(ChemicalConfig(mode="plain", decay=1.0, rate=0.1))


# ---- gating ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_gate_is_clipped_exponential(kind):
    c = arr([0.0, 0.5, 1.0, 10.0], kind)
    p = gate(c, 2.0, 0.2)
    same_kind(p, kind)
    np.testing.assert_allclose(npy(p), [1.0, math.exp(-1.0), 0.2, 0.2], atol=1e-15)  # exp(-2) = 0.135 < 0.2
    # per-unit sensitivity
    np.testing.assert_allclose(npy(gate(c, arr([1.0, 2.0, 0.5, 0.0], kind), 0.0)),
                               [1.0, math.exp(-1.0), math.exp(-0.5), 1.0], atol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_gating_multiplies_the_gradient_of_each_unit(kind):
    rng = np.random.default_rng(0)
    g_in, g_b, g_out = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=(2, 3))
    p = np.array([1.0, 0.5, 0.2])
    out_in = gate_rows(arr(g_in, kind), arr(p, kind))
    out_b = gate_rows(arr(g_b, kind), arr(p, kind))
    out_out = gate_columns(arr(g_out, kind), arr(p, kind))
    for j in range(3):
        np.testing.assert_array_equal(npy(out_in)[j], p[j] * g_in[j])
        assert npy(out_b)[j] == p[j] * g_b[j]
        np.testing.assert_array_equal(npy(out_out)[:, j], p[j] * g_out[:, j])


@pytest.mark.parametrize("kind", KINDS)
def test_adaptive_sensitivity_from_importance_and_age(kind):
    W_out = arr([[3.0, 0.0], [4.0, 1.0]], kind)  # column norms 5 and 1
    act = arr([1.0, 2.0], kind)
    imp = importance(W_out, act)
    np.testing.assert_allclose(npy(imp), [5.0, 2.0])
    age = arr([100.0, 0.0], kind)
    s = adaptive_sensitivity(2.0, imp, age, importance_gain=1.0, age_gain=1.0, age_scale=100.0)
    # mean importance 3.5: s = 2 (1 + I/3.5 + a/(a+100))
    np.testing.assert_allclose(npy(s), [2 * (1 + 5 / 3.5 + 0.5), 2 * (1 + 2 / 3.5)])


# ---- reward modulation ----------------------------------------------------------------------------
def test_reward_modulated_learning_rate():
    assert ema_update(None, 2.0, 0.9) == 2.0
    assert ema_update(1.0, 2.0, 0.9) == pytest.approx(1.1)
    assert lr_scale(1.0, None, 1.0, 0.8, 1.4) == 1.0
    assert lr_scale(1.2, 1.0, 1.0, 0.8, 1.4) == pytest.approx(1.2)  # error above expectation: learn faster
    assert lr_scale(5.0, 1.0, 1.0, 0.8, 1.4) == 1.4  # clipped
    assert lr_scale(0.0, 1.0, 1.0, 0.8, 1.4) == 0.8
    mod = RewardModulator(RewardConfig(decay=0.5, gain=1.0, scale_min=0.5, scale_max=2.0))
    assert mod.step(1.0) == 1.0 and mod.ema == 1.0
    assert mod.step(1.5) == pytest.approx(1.5) and mod.ema == pytest.approx(1.25)
    off = RewardModulator(RewardConfig(enabled=False))
    off.step(1.0)
    assert off.step(100.0) == 1.0 and off.ema is not None  # EMA still tracked
    assert lr_scale(torch.tensor(1.2), torch.tensor(1.0), 1.0, 0.8, 1.4) == pytest.approx(1.2)


# ---- trigger --------------------------------------------------------------------------------------
PLATEAU = [1.0] * 10  # flat: improvement 0 < tol
FALLING = [2.0 - 0.1 * i for i in range(10)]  # newer half much lower: no plateau


@pytest.mark.parametrize("kind", KINDS)
def test_trigger_fires_only_when_all_three_conditions_hold(kind):
    cfg = TriggerConfig(kind="adaptive", min_spacing=5, window=10, plateau_tol=0.01, spread_min=0.05)
    spread = arr([0.1, 0.5, 1.0, 2.0], kind)  # Var(c) = 0.53, well above 0.05
    uniform = arr([1.0, 1.0, 1.0, 1.01], kind)
    assert chemical_spread(spread) > 0.05 > chemical_spread(uniform)
    assert should_sleep(PLATEAU, spread, 5, cfg)
    assert trigger_conditions(PLATEAU, spread, 5, cfg) == {"spacing": True, "plateau": True, "spread": True}
    assert not should_sleep(PLATEAU, spread, 4, cfg)  # spacing missing
    assert not should_sleep(FALLING, spread, 5, cfg)  # plateau missing
    assert not should_sleep(PLATEAU, uniform, 5, cfg)  # spread missing
    assert not should_sleep(PLATEAU[:9], spread, 5, cfg)  # too short a history is no plateau
    fixed = TriggerConfig(kind="fixed", every=3)
    assert not should_sleep(FALLING, uniform, 2, fixed) and should_sleep(FALLING, uniform, 3, fixed)
    ungated = TriggerConfig(kind="adaptive", min_spacing=5, window=10, plateau_tol=0.01, spread_min=0.05,
                            spread_gate=False)  # the spread-gate ablation: spacing and plateau decide
    assert should_sleep(PLATEAU, uniform, 5, ungated) and not should_sleep(FALLING, uniform, 5, ungated)


def test_spread_is_the_prototypes_variance_gate_at_its_chemical_gain():
    # the prototype sleeps when Var(c) >= 0.02 with its chemical (gain 4); ours reads Var(c / g)
    assert PROTOTYPE_SPREAD_MIN == pytest.approx(0.02 / 16)
    rng = np.random.default_rng(0)
    gain = steady_gain(ChemicalConfig(mode="plain", decay=0.995, rate=0.02))
    for _ in range(50):
        c = rng.uniform(0, 3, size=24) * rng.uniform(0.05, 0.3)
        assert (chemical_spread(c, gain) >= PROTOTYPE_SPREAD_MIN) == (np.var(c) >= 0.02 - 1e-15)
    # the same usage pattern gives the same spread whatever the chemical's constants
    usage_ = rng.uniform(0.2, 0.8, size=16)
    assert chemical_spread(4.0 * usage_, 4.0) == pytest.approx(chemical_spread(usage_, 1.0))
    # a uniform rise in use (as at a task switch) does not lower the spread (the old Var(c / mean c) fell)
    assert chemical_spread(usage_ + 0.5) == pytest.approx(chemical_spread(usage_))


def test_energy_plateau_and_spread_by_hand():
    # window 4: older mean 1.0, newer mean 0.985 -> relative improvement 0.015
    assert energy_plateau([5.0, 1.0, 1.0, 0.99, 0.98], 4, 0.02)
    assert not energy_plateau([5.0, 1.0, 1.0, 0.99, 0.98], 4, 0.01)
    assert chemical_spread(np.array([1.0, 3.0])) == pytest.approx(1.0)  # population variance
    assert chemical_spread(np.array([1.0, 3.0]), gain=2.0) == pytest.approx(0.25)  # c / g = [0.5, 1.5]
    assert chemical_spread(np.zeros(3)) == 0.0


# ---- budget ---------------------------------------------------------------------------------------
def test_sleep_budget_scales_with_spread_and_respects_width_bounds():
    c = np.array([1.0, 3.0])  # spread Var(c / 2) = 0.25 at gain 2
    cfg = BudgetConfig(split=4, prune=2, replay_steps=10, adaptive=True, spread_ref=0.125, scale_min=0.5, scale_max=4.0)
    b = sleep_budget(c, 10, 4, 100, cfg, gain=2.0)
    assert (b.n_split, b.n_prune, b.replay_steps, b.scale, b.skip) == (8, 4, 20, 2.0, False)
    assert sleep_budget(c, 98, 4, 100, cfg, gain=2.0).n_split == 2  # capped by max_width
    assert sleep_budget(c, 5, 4, 5, cfg, gain=2.0).n_prune == 1  # capped by min_width
    fixed = sleep_budget(c, 10, 4, 100, BudgetConfig(split=4, prune=2, replay_steps=10, adaptive=False))
    assert (fixed.n_split, fixed.n_prune, fixed.replay_steps, fixed.scale) == (4, 2, 10, 1.0)
    assert sleep_budget(torch.tensor(c), 10, 4, 100, cfg, gain=2.0) == b


def test_budget_progress_windows_follow_the_prototypes_schedule():
    cfg = BudgetConfig(split=2, prune=1, replay_steps=3, adaptive=False, split_until=0.85, prune_from=0.5)
    c = np.ones(4)
    early, mid, late = (sleep_budget(c, 10, 4, 100, cfg, progress=t) for t in (0.2, 0.6, 0.9))
    assert (early.n_split, early.n_prune, early.skip) == (2, 0, False)  # splits only before half-way
    assert (mid.n_split, mid.n_prune, mid.skip) == (2, 1, False)
    assert (late.n_split, late.n_prune, late.skip) == (0, 1, False)  # prunes only after 85%
    no_prune = BudgetConfig(split=2, prune=0, replay_steps=3, adaptive=False, split_until=0.85, prune_from=0.5)
    assert sleep_budget(c, 10, 4, 100, no_prune, progress=0.9).skip  # nothing left to do: the sleep is skipped
    assert not sleep_budget(c, 10, 4, 100, no_prune, progress=None).skip  # progress unknown: no window
    assert not sleep_budget(c, 10, 4, 100, BudgetConfig(prune=0), progress=0.99).skip  # no window configured


# ---- split ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("share", [0.5, 0.3])
@pytest.mark.parametrize("noise", [0.0, 0.02, 0.5])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_split_preserves_the_network_function_to_the_stated_tolerance(kind, share, noise, dtype):
    rng = np.random.default_rng(1)
    W_in, b_in, W_out = rng.normal(size=(6, 5)), rng.normal(size=6), rng.normal(size=(3, 6))
    b_out, x, eps = rng.normal(size=3), rng.normal(size=(50, 5)), rng.normal(size=(3, 2))

    def cast(v):
        a = arr(v, kind)
        return a.to(getattr(torch, dtype)) if kind == "torch" else a.astype(dtype)

    W_in, b_in, W_out, b_out, x, eps = (cast(v) for v in (W_in, b_in, W_out, b_out, x, eps))
    originals = [npy(v).copy() for v in (W_in, b_in, W_out)]

    def f(Wi, bi, Wo):
        return _xp.tanh(x @ Wi.T + bi) @ Wo.T + b_out

    before = f(W_in, b_in, W_out)
    Wi2, bi2, Wo2 = split_units(W_in, b_in, W_out, [4, 1], share=share, noise=noise, eps=eps)
    same_kind(Wi2, kind)
    assert tuple(Wi2.shape) == (8, 5) and tuple(bi2.shape) == (8,) and tuple(Wo2.shape) == (3, 8)
    assert np.max(np.abs(npy(f(Wi2, bi2, Wo2)) - npy(before))) < FUNCTION_TOLERANCE[dtype]
    # children appended in idx order: copies of the inputs; parent + child outgoing columns = the original
    np.testing.assert_array_equal(npy(Wi2)[6], npy(W_in)[4])
    np.testing.assert_array_equal(npy(Wi2)[7], npy(W_in)[1])
    tol = 10 * FUNCTION_TOLERANCE[dtype]
    np.testing.assert_allclose(npy(Wo2)[:, 4] + npy(Wo2)[:, 6], npy(W_out)[:, 4], rtol=0, atol=tol)
    # the symmetry-breaking offset: share v + d for the parent, (1 - share) v - d for the child
    d = noise * max(np.linalg.norm(npy(W_out)[:, 4]), 1e-3) * npy(eps)[:, 0]
    np.testing.assert_allclose(npy(Wo2)[:, 4], share * npy(W_out)[:, 4] + d, rtol=0, atol=tol)
    assert (np.abs(npy(Wo2)[:, 4] - npy(Wo2)[:, 6]).max() > 0) == (noise > 0 or share != 0.5)
    for before_split, now in zip(originals, (W_in, b_in, W_out)):  # the inputs are not modified
        np.testing.assert_array_equal(npy(now), before_split)
    with pytest.raises(ValueError, match="eps of shape"):
        split_units(W_in, b_in, W_out, [4, 1], noise=0.1)


@pytest.mark.parametrize("kind", KINDS)
def test_distinct_units_counts_near_parallel_rows_once(kind):
    rng = np.random.default_rng(4)
    base = rng.normal(size=(5, 3))
    W = np.concatenate([base, 2.0 * base[[1]], base[[3]] + 1e-6, rng.normal(size=(2, 3))])  # 2 copies, 2 new
    assert distinct_units(arr(W, kind)) == 7
    assert distinct_units(arr(W, kind), cosine=1.1) == len(W)  # nothing is closer than cosine 1.1
    assert distinct_units(arr(np.zeros((3, 2)), kind)) == 1
    rot = np.array([[1.0, 0.0], [np.cos(0.1), np.sin(0.1)]])  # 5.7 degrees apart: cosine 0.995
    assert distinct_units(arr(rot, kind)) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_split_candidates_and_unit_state(kind):
    c = arr([0.1, 5.0, 0.2, 3.0, 0.15], kind)  # mean 1.69, std ~1.99
    assert split_candidates(c, 5, z=0.0) == [1, 3]
    assert split_candidates(c, 1, z=0.0) == [1]
    assert split_candidates(c, 5, z=0.0, exclude=[1]) == [3]
    assert split_candidates(c, 5, z=1.0) == [1]
    assert split_candidates(c, 0) == []
    v = split_vector(arr([1.0, 2.0, 3.0], kind), [2, 0], parent_scale=0.5, child_scale=0.5)
    np.testing.assert_allclose(npy(v), [0.5, 2.0, 1.5, 1.5, 0.5])
    np.testing.assert_allclose(npy(split_vector(arr([7.0, 8.0], kind), [1], child_value=0.0)), [7.0, 8.0, 0.0])
    with pytest.raises(ValueError, match="distinct"):
        split_units(arr(np.eye(2), kind), arr([0.0, 0.0], kind), arr(np.eye(2), kind), [1, 1])
    with pytest.raises(ValueError, match="noise"):
        SplitConfig(noise=-0.1)


# ---- prune ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_prune_removes_exactly_the_chosen_units(kind):
    rng = np.random.default_rng(2)
    W_in, b_in, W_out = rng.normal(size=(6, 4)), rng.normal(size=6), rng.normal(size=(3, 6))
    Wi, bi, Wo = prune_units(arr(W_in, kind), arr(b_in, kind), arr(W_out, kind), [4, 1])
    keep = [0, 2, 3, 5]
    np.testing.assert_array_equal(npy(Wi), W_in[keep])
    np.testing.assert_array_equal(npy(bi), b_in[keep])
    np.testing.assert_array_equal(npy(Wo), W_out[:, keep])
    np.testing.assert_array_equal(npy(remove_units(arr([1.0, 2.0, 3.0], kind), [0])), [2.0, 3.0])
    with pytest.raises(IndexError):
        prune_units(arr(W_in, kind), arr(b_in, kind), arr(W_out, kind), [6])


@pytest.mark.parametrize("kind", KINDS)
def test_prune_candidates_need_low_chemical_and_age(kind):
    c = arr([1.0, 0.1, 0.2, 1.5, 0.05], kind)  # mean 0.57; 0.5 * mean = 0.285
    age = arr([500, 500, 500, 500, 10], kind)
    assert prune_candidates(c, age, 5, min_age=100, fraction=0.5) == [1, 2]  # unit 4 is too young
    assert prune_candidates(c, age, 1, min_age=100, fraction=0.5) == [1]
    assert prune_candidates(c, age, 5, min_age=0, fraction=0.5) == [4, 1, 2]
    assert prune_candidates(c, age, 5, min_age=0, fraction=0.5, exclude=[4]) == [1, 2]


@pytest.mark.parametrize("kind", KINDS)
def test_gradual_prune_and_bias_compensation(kind):
    W_out = arr([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], kind)
    np.testing.assert_allclose(npy(fade_columns(W_out, [1], 0.5)), [[1.0, 1.0, 3.0], [4.0, 2.5, 6.0]])
    b = compensate_bias(arr([0.0, 1.0], kind), W_out, [0, 2], arr([0.5, 9.0, -1.0], kind))
    np.testing.assert_allclose(npy(b), [0.5 - 3.0, 1.0 + 2.0 - 6.0])


# ---- homeostasis ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_norm_control_caps_row_norms(kind):
    W = arr([[3.0, 4.0], [0.3, 0.4]], kind)  # norms 5 and 0.5
    out = norm_control(W, 2.0)
    np.testing.assert_allclose(npy(row_norms(out)), [2.0, 0.5])
    np.testing.assert_allclose(npy(out)[1], [0.3, 0.4])
    half = norm_control(W, 2.0, rate=0.5)  # halfway: factor 1 - 0.5 (1 - 2/5) = 0.7
    np.testing.assert_allclose(npy(half)[0], [2.1, 2.8])


# ---- replay ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_replay_weights_are_class_balanced_and_prioritized(kind):
    labels = np.array([0, 0, 0, 1])
    prio = arr([1.0, 1.0, 2.0, 0.5], kind)
    lab = torch.tensor(labels) if kind == "torch" else labels
    w = npy(replay_weights(lab, prio, num_classes=3))
    np.testing.assert_allclose(w, [0.125, 0.125, 0.25, 0.5])  # each present class: 1/2
    assert w.sum() == pytest.approx(1.0)
    flat = npy(replay_weights(lab, prio, num_classes=3, alpha=0.0))
    np.testing.assert_allclose(flat, [1 / 6, 1 / 6, 1 / 6, 0.5])


def test_replay_buffer_ring_and_sampling():
    buf = ReplayBuffer(4, 2)
    buf.add(np.arange(12.0).reshape(6, 2), np.array([0, 1, 0, 1, 0, 1]), np.ones(6))
    assert len(buf) == 4
    np.testing.assert_array_equal(buf.x[:, 0], [8.0, 10.0, 4.0, 6.0])  # rows 4, 5 overwrote 0, 1
    idx = buf.sample(np.random.default_rng(0), 2000, num_classes=2)
    assert abs((buf.y[idx] == 0).mean() - 0.5) < 0.05


# ---- rollback -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_rollback_restores_bit_identical_state(kind):
    rng = np.random.default_rng(3)
    state = {"W": arr(rng.normal(size=(4, 3)), kind), "nested": {"b": arr(rng.normal(size=4), kind)}, "n": 3}
    snap = snapshot(state)
    original = {"W": npy(state["W"]).copy(), "b": npy(state["nested"]["b"]).copy()}
    state["W"] += 1.0  # in-place changes after the snapshot must not leak into it
    state["nested"]["b"] *= 0.0
    back = restore(snap)
    assert npy(back["W"]).tobytes() == original["W"].tobytes()
    assert npy(back["nested"]["b"]).tobytes() == original["b"].tobytes()
    assert back["n"] == 3
    back["W"] += 5.0
    assert npy(restore(snap)["W"]).tobytes() == original["W"].tobytes()  # the snapshot stays reusable
    assert should_rollback(1.0, 1.03, 0.02) and not should_rollback(1.0, 1.02, 0.02)
    assert should_rollback(1.0, float("nan"), 0.02)
