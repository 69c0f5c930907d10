"""TriarchicBrain: k-WTA base, neurogenesis, protected core, decaying context, importance locking."""

import pytest
import torch
from torch.nn import functional as F

from circadian_vision.plastic import TriarchicBrain, TriarchicConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def brain(**kw):
    cfg = {"hidden_dim": 128, "k": 4, "novelty_threshold": -1.0, **kw}  # -1: no neurogenesis unless asked
    return TriarchicBrain(16, 3, TriarchicConfig(**cfg), seed=0)


def data(n=24, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 16, generator=gen), torch.randint(0, 3, (n,), generator=gen)


def test_kwta_keeps_exactly_k_active_and_normalizes():
    b = brain(k=6)
    x, _ = data()
    _, h = b.encode(x)
    assert ((h != 0).sum(1) == 6).all()
    assert torch.allclose(h.norm(dim=1), torch.ones(len(x)))
    assert b.sparsity() == 6 / 128


def test_context_decays_toward_zero_without_input():
    b = brain(context_decay=0.8)
    x, y = data()
    for _ in range(5):
        b.train_step(x, y)
    energy = b.context_energy()
    assert energy > 0
    core = b.w_core.clone()
    b.decay_context(1)
    assert abs(b.context_energy() - 0.8 * energy) < 1e-5
    b.decay_context(60)
    assert b.context_energy() < 1e-5 * energy
    assert torch.equal(b.w_core, core)  # the core does not decay


def test_context_update_is_fast_then_decayed_and_core_is_braked_by_importance():
    b = brain(core_lr=0.05, context_lr=0.5, context_decay=0.8, brake_gain=2.0, lock_rate=0.0)
    x, y = data()
    b.importance[:, :64] = 1.0  # fully braked synapses (brake = clamp(2 * 1, 0, 1) = 1)
    _, h = b.encode(x)
    delta = (F.one_hot(y, 3).float() - torch.softmax(torch.zeros(len(y), 3), 1)).T @ h / len(y)
    b.train_step(x, y)
    assert torch.allclose(b.w_context, 0.5 * delta * 0.8, atol=1e-7)
    assert torch.equal(b.w_core[:, :64], torch.zeros(3, 64))  # locked: no change at all
    assert torch.allclose(b.w_core[:, 64:], 0.05 * delta[:, 64:], atol=1e-7)


def test_importance_locks_synapses_of_correct_predictions_only():
    b = brain(lock_rate=2.0)
    x, y = data()
    b.w_core[:, :] = 0.0
    _, h = b.encode(x)
    # make the brain right on exactly the samples of class 0
    b.w_core[0] = 10.0 * (h[y == 0].sum(0) > 0)
    correct = b.predict(x) == y
    assert correct.any() and not correct.all()
    b.train_step(x, y)
    expected = 2.0 * F.one_hot(y[correct], 3).float().T @ h[correct] / len(y)
    assert torch.allclose(b.importance, expected, atol=1e-6)


def test_neurogenesis_replaces_the_least_useful_unlocked_neuron_for_unfamiliar_inputs():
    b = brain(novelty_threshold=0.99, max_births=1, lock_threshold=0.5)
    b.utility.fill_(1.0)
    b.utility[5] = 0.0  # least useful, but locked below
    b.utility[9] = 0.1  # least useful among the unlocked
    b.importance[0, 5] = 1.0
    x = torch.randn(1, 16)
    replaced = b.neurogenesis(x)
    assert replaced.tolist() == [9]
    assert torch.allclose(b.projection[9], F.normalize(x, dim=1)[0])
    assert b.importance[:, 9].sum() == 0 and b.w_core[:, 9].abs().sum() == 0
    pre, _ = b.encode(x)
    assert pre.max() > 0.999  # the input is now familiar ...
    assert len(b.neurogenesis(x)) == 0  # ... so no second birth


def test_familiar_inputs_cause_no_births():
    b = brain(novelty_threshold=-1.0)
    x, y = data()
    proj = b.projection.clone()
    b.train_step(x, y)
    assert torch.equal(b.projection, proj) and b.births == 0


def test_accuracy_is_measured_before_the_update():
    b = brain()
    x, y = data()
    before = float((b.predict(x) == y).float().mean())
    stats = b.train_step(x, y)
    assert stats["acc_before"] == before
    assert set(b.eval_views()) == {"core"}
