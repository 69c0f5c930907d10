"""PlasticBrain: pluggable blocks, memory-driven reward, and the trainer's history (determinism included)."""

import json
import math

import numpy as np
import pytest
import torch

from circadian_vision.plastic import (
    BlockConfig,
    NaiveLinearHead,
    NeuromodulatedBlock,
    PhaseConfig,
    PlasticBrain,
    PlasticBrainConfig,
    PlasticTrainer,
    RandomProjectionEyes,
    TrainingHistory,
    TriarchicBrain,
    TriarchicConfig,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_brain(layers=2, seed=0, **kw):
    cfg = PlasticBrainConfig(num_layers=layers, block=BlockConfig(hidden_dim=32, k=4), memory_size=256, warmup_steps=2, **kw)
    return PlasticBrain(8, 4, cfg, seed=seed)


def blobs(n=64, seed=0):
    """Four well-separated classes in 8-d."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    centres = torch.eye(8)[:4] * 4.0
    return centres[y] + 0.3 * torch.randn(n, 8, generator=gen), y


def test_add_remove_replace_and_freeze_blocks():
    brain = small_brain(layers=1)
    first = brain.blocks[0]
    added = brain.add_block()
    assert brain.num_layers == 2 and brain.blocks[1] is added
    front = brain.add_block(index=0)
    assert brain.blocks[0] is front and brain.blocks[1] is first
    custom = NeuromodulatedBlock(8, BlockConfig(hidden_dim=16, k=2))
    old = brain.replace_block(1, custom)
    assert old is first and brain.blocks[1] is custom
    assert brain.remove_block(0) is front and brain.num_layers == 2
    with pytest.raises(ValueError, match="residual stream"):
        brain.add_block(NeuromodulatedBlock(5, BlockConfig(hidden_dim=16, k=2)))
    with pytest.raises(IndexError):
        brain.remove_block(7)
    # a frozen block keeps its weights through training; the unfrozen one learns
    brain.freeze_block(0)
    frozen_w = brain.blocks[0].w_enc.clone()
    live_w = brain.blocks[1].w_enc.clone()
    x, y = blobs()
    for _ in range(5):
        brain.train_step(x, y)
    assert torch.equal(brain.blocks[0].w_enc, frozen_w)
    assert not torch.equal(brain.blocks[1].w_enc, live_w)
    brain.freeze_block(0, frozen=False)
    brain.train_step(x, y)
    assert not torch.equal(brain.blocks[0].w_enc, frozen_w)
    # with every block removed the brain is its memory alone
    brain.remove_block()
    brain.remove_block()
    assert brain.num_layers == 0
    assert brain.predict(x).shape == (len(x),)


def test_memory_drives_the_reward_after_warmup():
    brain = small_brain(layers=1, right_reward=1.0, wrong_reward=-1.0)
    x, y = blobs()
    rewards = [brain.train_step(x, y)["reward"] for _ in range(4)]
    assert rewards[:2] == [1.0, 1.0]  # warm-up: everything rewarded
    acc = brain.train_step(x, y)["acc_before"]
    assert acc > 0.9  # the memory has learned the blobs
    # after warm-up the mean reward is accuracy * 1 + (1 - accuracy) * -1
    stats = brain.train_step(x, y)
    assert math.isclose(stats["reward"], 2 * stats["acc_before"] - 1, abs_tol=1e-6)


def test_the_prototypes_reward_weak_punishment_and_everything_rewarded_in_panic():
    brain = small_brain(layers=1)  # defaults: +1 right, -0.2 wrong (the prototype's PlasticBrain.train_step)
    assert (brain.config.right_reward, brain.config.wrong_reward) == (1.0, -0.2)
    x, y = blobs()
    for _ in range(3):
        brain.train_step(x, y)
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]  # mostly wrong labels
    stats = brain.train_step(x, shuffled)
    assert math.isclose(stats["reward"], stats["acc_before"] * 1.0 + (1 - stats["acc_before"]) * -0.2, abs_tol=1e-6)
    assert stats["reward"] < 0.5
    assert brain.train_step(x, shuffled, mode="panic")["reward"] == 1.0


def test_batch_norm_trains_on_batch_statistics_and_predicts_with_running_ones():
    brain = small_brain(layers=0)
    assert brain.config.norm == "batch"
    x, y = blobs()
    x = 3.0 * x + 5.0  # far from zero mean, unit variance
    h = brain.normalize(x, training=True)
    torch.testing.assert_close(h.mean(0), torch.zeros(8), atol=1e-5, rtol=0)  # the batch's own statistics
    torch.testing.assert_close(brain.running_mean, torch.zeros(8))  # not updated without update=True
    for _ in range(60):
        brain.train_step(x, y)
    torch.testing.assert_close(brain.running_mean, x.mean(0), atol=0.05, rtol=0)  # running stats converge (0.9^60)
    one = brain.normalize(x[:1])  # prediction: a single sample, running statistics
    torch.testing.assert_close(one, (x[:1] - brain.running_mean) / (brain.running_var + 1e-5).sqrt())
    layer = small_brain(layers=0, norm="layer")
    torch.testing.assert_close(layer.normalize(x).mean(1), torch.zeros(len(x)), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="norm must be one of"):
        small_brain(norm="group")


def test_brain_with_eyes_sees_images_and_explains_predictions():
    eyes = RandomProjectionEyes((8, 8), feature_dim=8, seed=0)
    brain = PlasticBrain(8, 4, PlasticBrainConfig(num_layers=1, block=BlockConfig(hidden_dim=16, k=2), memory_size=32), eyes=eyes)
    images = torch.rand(6, 8, 8)
    feats = brain.see(images)
    assert feats.shape == (6, 8)
    brain.train_step(feats, torch.tensor([0, 1, 2, 3, 0, 1]))
    nb = brain.explain(feats, k=3)
    assert nb.labels.shape == (6, 3)
    with pytest.raises(RuntimeError, match="no eyes"):
        small_brain().see(images)


def test_consolidation_after_a_phase_then_protection():
    brain = small_brain(layers=1)
    x, y = blobs()
    for _ in range(10):
        brain.train_step(x, y)
    assert brain.end_phase(consolidate=True)["newly_mature"] > 0
    snap = brain.core_snapshot()
    for _ in range(5):
        brain.train_step(-x, y, mode="plastic")
    assert brain.core_drift(snap) == 0.0


def curriculum(learner, seed=0, eval_every=3):
    x, y = blobs(96, seed=1)
    xt, yt = blobs(48, seed=2)
    first, second = y < 2, y >= 2
    phases = [
        PhaseConfig("a", (x[first], y[first]), steps=6, batch_size=8, consolidate_after=True),
        PhaseConfig("b", (x[second], y[second]), steps=6, batch_size=8, consolidate_after=True),
        PhaseConfig("storm", (-x, y), steps=6, batch_size=8, mode="panic"),
    ]
    evals = {"a": (xt[yt < 2], yt[yt < 2]), "b": (xt[yt >= 2], yt[yt >= 2]), "storm": (-xt, yt)}
    return PlasticTrainer(learner, phases, evals, eval_every=eval_every, seed=seed)


@pytest.mark.parametrize(
    "make",
    [
        lambda s: small_brain(seed=s),
        lambda s: TriarchicBrain(8, 4, TriarchicConfig(hidden_dim=64, k=4), seed=s),
        lambda s: NaiveLinearHead(8, 4, seed=s),
    ],
    ids=["plastic", "triarchic", "naive"],
)
def test_same_seed_gives_identical_history(make):
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        runs.append(curriculum(make(0), seed=0).train().to_dict())
    for a in runs:
        for p in a["phases"]:
            p.pop("wall_s")
    assert json.dumps(runs[0], sort_keys=True) == json.dumps(runs[1], sort_keys=True)  # NaN-aware equality
    other = curriculum(make(1), seed=1).train().to_dict()
    assert other["steps"] != runs[0]["steps"]


def test_history_records_every_step_eval_and_phase():
    trainer = curriculum(small_brain(), eval_every=4)
    h = trainer.train()
    assert len(h.steps) == 18
    assert [r["phase"] for r in h.steps] == ["a"] * 6 + ["b"] * 6 + ["storm"] * 6
    assert [r["phase_step"] for r in h.steps[:6]] == [1, 2, 3, 4, 5, 6]
    cols = h.columns()
    for key in ("acc_before", "memory_fill", "layer0.mature_fraction", "layer1.active_fraction", "mode"):
        assert len(cols[key]) == 18
    assert cols["mode"][-1] == "panic"
    assert h.phase_names() == ["a", "b", "storm"]
    assert set(h.phase_end("b")) == {"a", "b", "storm"}
    eval_steps = sorted({e["step"] for e in h.evals})
    assert eval_steps == [0, 4, 6, 8, 12, 16, 18]  # start, every 4 steps, and each phase end
    assert h.phases[1]["start_step"] == 6 and h.phases[1]["end_step"] == 12
    fig = trainer.plot_results()
    assert len(fig.axes) >= 2


def test_adaptation_steps_and_retention_known_answers():
    h = TrainingHistory()
    curve = [0.0, 0.0, 0.2, 0.5, 0.9, 1.0, 1.0, 1.0]
    h.steps = [{"phase": "p", "acc_before": a} for a in curve]
    # window 1: final level 1.0, first step reaching 0.8 is the 5th
    assert h.adaptation_steps("p", 0.8, window=1) == 5
    # window 2: final level mean(1, 1) = 1; trailing means 0, 0, .1, .35, .7, .95 -> 6th step
    assert h.adaptation_steps("p", 0.8, window=2) == 6
    h.steps = [{"phase": "q", "acc_before": 0.0} for _ in range(3)]
    assert np.isnan(h.adaptation_steps("q"))
    h.phases = [{"name": "p1", "eval": {"s": 0.8}}, {"name": "p2", "eval": {"s": 0.4}}, {"name": "p3", "eval": {"s": 0.2}}]
    assert h.retention("s") == {"p1": 1.0, "p2": 0.5, "p3": 0.25}


def test_phase_config_is_validated():
    x, y = blobs()
    with pytest.raises(ValueError, match="unknown mode"):
        PhaseConfig("p", (x, y), mode="calm")
    with pytest.raises(ValueError, match="no training data"):
        PhaseConfig("p", (x[:0], y[:0]))
    assert PhaseConfig("p", (x, y), epochs=1.5, batch_size=10).num_steps == 10
    with pytest.raises(ValueError, match="unique"):
        PlasticTrainer(small_brain(), [PhaseConfig("p", (x, y)), PhaseConfig("p", (x, y))])
