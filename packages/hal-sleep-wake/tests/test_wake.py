"""Wake: only LoRA learns, replay draws come from L1, masks hide what a scenario must not see."""

from __future__ import annotations

import pytest
import torch

from hal_sleep_wake.learner import Learner
from hal_sleep_wake.model import mask_logits


def observe(learner: Learner, x: torch.Tensor, y: torch.Tensor, t: int = 0) -> None:
    tasks = torch.full((len(y),), t, dtype=torch.long)
    learner.method.observe(x, y, tasks, t, torch.arange(len(y)))


def batch_sizes_seen(learner: Learner) -> list[int]:
    sizes: list[int] = []
    learner.model.register_forward_pre_hook(lambda _m, args: sizes.append(args[0].shape[0]))
    return sizes


def test_only_lora_parameters_get_gradients_and_change(seq, tiny_cfg):
    learner = Learner(tiny_cfg(), seq, "task")
    before = {n: p.detach().clone() for n, p in learner.model.named_parameters()}
    x, y = seq.x_train[0][:16], seq.y_train[0][:16]
    for _ in range(3):
        observe(learner, x, y)
    changed = set()
    for n, p in learner.model.named_parameters():
        is_lora = ".lora_A" in n or ".lora_B" in n
        if not is_lora:
            assert p.grad is None, f"base parameter {n} received a gradient"
            assert torch.equal(p, before[n]), f"base parameter {n} changed while awake"
        elif not torch.equal(p, before[n]):
            changed.add(n)
    assert any(".lora_B" in n for n in changed) and any(".lora_A" in n for n in changed)


@pytest.mark.parametrize("method", ["hal", "er"])
def test_replay_mixes_replay_n_buffered_samples(seq, tiny_cfg, method):
    learner = Learner(tiny_cfg(method=method, memory={"replay_n": 5}), seq, "class")
    sizes = batch_sizes_seen(learner)
    x, y = seq.x_train[0], seq.y_train[0]
    observe(learner, x[:16], y[:16])  # L1 is empty: nothing to replay yet
    assert len(learner.memory) == 16  # every wake batch is pushed
    observe(learner, x[16:32], y[16:32])
    observe(learner, x[32:35], y[32:35])
    assert sizes == [16, 16 + 5, 3 + 5]


@pytest.mark.parametrize("method", ["finetune", "ewc", "lwf"])
def test_reference_methods_without_a_buffer_do_not_replay(seq, tiny_cfg, method):
    learner = Learner(tiny_cfg(method=method), seq, "task")
    sizes = batch_sizes_seen(learner)
    for _ in range(2):
        observe(learner, seq.x_train[0][:16], seq.y_train[0][:16])
    assert sizes == [16, 16] and learner.memory is None
    assert all(p.requires_grad for p in learner.model.parameters())


def test_task_masking_hides_other_tasks_logits(seq, tiny_cfg):
    learner = Learner(tiny_cfg(), seq, "task")
    sc = learner.scenario
    tasks = torch.tensor([0, 1, 1])
    logits = torch.arange(12.0).view(3, 4)
    masked = mask_logits(logits, sc.train_mask(tasks, current=1))
    assert torch.isinf(masked[0, 2:]).all() and torch.isfinite(masked[0, :2]).all()
    assert torch.isinf(masked[1:, :2]).all() and torch.isfinite(masked[1:, 2:]).all()
    # the other task's head can say anything: task-0 predictions and losses do not move
    model = learner.model
    x = learner.prepare(seq.x_test[0], train=False)
    mask = sc.eval_mask("task", torch.zeros(len(x), dtype=torch.long), 1)
    with torch.no_grad():
        before = learner.masked(learner.forward(model, x), mask)
        model.fc.heads[1].base_layer.weight.mul_(-50).add_(3)
        after = learner.masked(learner.forward(model, x), mask)
    torch.testing.assert_close(after, before)


def test_class_incremental_masks_unseen_classes(seq, tiny_cfg):
    sc = Learner(tiny_cfg(), seq, "class").scenario
    m0 = sc.train_mask(torch.tensor([0, 0]), current=0)
    m1 = sc.train_mask(torch.tensor([0, 1]), current=1)
    assert m0.tolist() == [[True, True, False, False]] * 2  # task 1's classes are not seen yet
    assert m1.all()  # after task 1 every seen class competes, whatever the sample's task
    assert sc.eval_mask("class", torch.tensor([0]), 0).tolist() == [[True, True, False, False]]


def test_one_head_trains_every_logit_and_tests_both_ways(seq, tiny_cfg):
    """Mammoth's protocol: nothing masked in training; class-IL over all logits, task-IL within the task block."""
    learner = Learner(tiny_cfg(method="finetune"), seq, "one-head")
    sc = learner.scenario
    assert sc.views == ("class", "task") and learner.model.fc.out_features == 4
    assert sc.train_mask(torch.tensor([0]), 0).all()
    assert sc.eval_mask("class", torch.tensor([0]), 0).all()
    assert sc.eval_mask("task", torch.tensor([1]), 0).tolist() == [[False, False, True, True]]
    result = learner.fit()
    assert set(result.matrices) == {"class", "task"}
    for t in range(2):  # task-IL (within the block) is never below class-IL (among all classes)
        assert all(a >= b for a, b in zip(result.matrices["task"][t], result.matrices["class"][t]))
