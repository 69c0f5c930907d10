"""Sleep: REM really changes the consolidation (and its switch works); dreams; distillation."""

from __future__ import annotations

import torch

from hal_sleep_wake.learner import Learner
from hal_sleep_wake.sleep import distill_loss, make_dreams, same_task_partners

OFF = {"nrem": False, "rem": False, "reset_optimizer": False}


def observe(learner: Learner, x: torch.Tensor, y: torch.Tensor, t: int) -> None:
    tasks = torch.full((len(y),), t, dtype=torch.long)
    learner.method.observe(x, y, tasks, t, torch.arange(len(y)))


def wake_two_tasks_then_sleep(seq, cfg, scenario="task"):
    torch.manual_seed(0)
    learner = Learner(cfg, seq, scenario, seed=0)
    learner.train_task(0)  # ends with the first sleep (no old task yet: REM has nothing to do)
    x, y = seq.x_train[1], seq.y_train[1]
    for s in range(0, 48, 16):
        observe(learner, x[s : s + 16], y[s : s + 16], 1)
    learner.model.eval()
    before = {k: v.clone() for k, v in learner.model.state_dict().items()}
    inputs = learner.prepare(seq.x_test[0], train=False)  # the old task
    mask = learner.scenario.eval_mask("task", torch.zeros(len(inputs), dtype=torch.long), 1)
    snapshot = learner.method.snapshot
    with torch.no_grad():
        out_before = learner.masked(learner.forward(learner.model, inputs), mask)
        # REM's teacher for the old task: the snapshot taken at the end of the first sleep
        teacher = learner.masked(learner.forward(snapshot, inputs), mask) if snapshot is not None else None
    learner.method.sleep(1)
    learner.model.eval()
    with torch.no_grad():
        out_after = learner.masked(learner.forward(learner.model, inputs), mask)
    return learner, before, out_before, out_after, teacher, mask


def test_rem_changes_the_consolidation_and_can_be_switched_off(seq, tiny_cfg):
    cfg_off = tiny_cfg(sleep={"rem": False})
    cfg_on = tiny_cfg(rem={"steps": 8, "batch_size": 16, "lr": 0.01, "ce_weight": 0.0})  # distillation alone
    off, before_off, out_b_off, out_a_off, _, _ = wake_two_tasks_then_sleep(seq, cfg_off)
    on, before_on, out_b_on, out_a_on, teacher, mask = wake_two_tasks_then_sleep(seq, cfg_on)
    # identical until the second sleep (the first had no old task to dream of) ...
    for k in before_off:
        torch.testing.assert_close(before_on[k], before_off[k], rtol=0, atol=0)
    # ... NREM alone keeps the function (exact merge); REM moves it
    torch.testing.assert_close(out_a_off, out_b_off, rtol=1e-5, atol=1e-5)
    assert (out_a_on - out_a_off)[mask].abs().max() > 1e-3
    assert off.stats["rem_loss_first"] == [] and len(on.stats["rem_loss_first"]) == 1
    # REM pulled the old task back towards its teacher, the snapshot of the previous sleep
    t = cfg_on.rem.temperature
    assert distill_loss(out_a_on, teacher, mask, t) < distill_loss(out_a_off, teacher, mask, t)
    assert on.stats["sleeps"] == off.stats["sleeps"] == 2


def test_rem_uses_its_own_optimizer_settings(seq, tiny_cfg):
    """The audit's defect: REM stepped at the wake learning rate. With REM's lr ~0 REM cannot move anything."""
    still, _, out_b, out_a, _, mask = wake_two_tasks_then_sleep(
        seq, tiny_cfg(rem={"steps": 4, "lr": 1e-12, "optimizer": "sgd"}, wake={"lr": 0.05}))
    torch.testing.assert_close(out_a[mask], out_b[mask], rtol=1e-5, atol=1e-5)
    assert len(still.stats["rem_loss_first"]) == 1  # REM ran


def test_rem_draws_from_its_own_generator_so_seeds_stay_paired(seq, tiny_cfg):
    """With and without REM the wake sees the same batches, augmentations and L1 draws: same buffer at the end."""
    runs = []
    for rem in (False, True):
        torch.manual_seed(0)
        learner = Learner(tiny_cfg(sleep={"rem": rem}, rem={"steps": 3}), seq, "class", seed=0)
        learner.fit()
        runs.append(learner)
    off, on = runs
    assert on.stats["rem_loss_first"] and not off.stats["rem_loss_first"]
    assert torch.equal(on.memory.y[: len(on.memory)], off.memory.y[: len(off.memory)])
    assert torch.equal(on.memory.x, off.memory.x)
    assert torch.equal(on.gen.get_state(), off.gen.get_state())  # the wake's stream drew the same numbers


def test_class_incremental_rem_distils_old_tasks_over_the_teachers_classes_only(seq3, tiny_cfg):
    learner = Learner(tiny_cfg(), seq3, "class")
    masks = learner.method._teacher_masks(torch.tensor([0, 1, 2]), t=2)
    # old-task dreams (tasks 0, 1): the snapshot was trained on tasks 0..1 - classes 0..3, not task 2's
    assert masks[0].tolist() == masks[1].tolist() == [True] * 4 + [False] * 2
    assert masks[2].all()  # a current-task dream: the awake model knows every class seen so far
    per_task = Learner(tiny_cfg(), seq3, "task").method._teacher_masks(torch.tensor([0, 2]), t=2)
    assert per_task.tolist() == [[True, True, False, False, False, False], [False, False, False, False, True, True]]


def test_each_sleep_change_has_its_own_switch(seq, tiny_cfg):
    nrem = Learner(tiny_cfg(sleep={**OFF, "nrem": True}), seq, "task")
    opt = nrem.opt
    nrem.train_task(0)
    assert nrem.stats["merges"] == 1 and nrem.opt is opt  # merged, optimizer state kept
    reset = Learner(tiny_cfg(sleep={**OFF, "reset_optimizer": True}), seq, "task")
    opt = reset.opt
    reset.train_task(0)
    assert reset.stats["merges"] == 0 and reset.opt is not opt and reset.stats["sleeps"] == 1
    rem = Learner(tiny_cfg(sleep={**OFF, "rem": True}), seq, "task")
    rem.train_task(0)
    assert rem.stats["merges"] == 0 and rem.method.snapshot is not None


def test_distillation_is_zero_for_identical_logits_and_ignores_masked_entries():
    mask = torch.tensor([[True, True, False]] * 2)
    z = torch.tensor([[1.0, 2.0, float("-inf")], [0.5, -1.0, float("-inf")]])
    assert distill_loss(z, z, mask, 2.0).item() == 0.0
    other = torch.tensor([[2.0, 1.0, float("-inf")], [0.5, -1.0, float("-inf")]])
    loss = distill_loss(other, z, mask, 2.0)
    assert torch.isfinite(loss) and loss.item() > 0


def test_mixup_dreams_pair_samples_of_the_same_task():
    g = torch.Generator().manual_seed(0)
    task = torch.tensor([0, 1, 0, 1, 1, 2])
    idx = torch.arange(6).repeat(20)
    partners = same_task_partners(task, idx, 3, g)
    assert torch.equal(task[partners], task[idx])
    assert set(partners[task[idx] == 1].tolist()) == {1, 3, 4}
    x = torch.zeros(6, 1, 2, 2, dtype=torch.uint8)
    x[:, 0, 0, 0] = torch.arange(6, dtype=torch.uint8) * 40
    inputs, tasks, labels = make_dreams(x, torch.arange(6), task, 50, mode="mixup", n_tasks=3,
                                        prepare=lambda b: b.float(), generator=g)
    assert inputs.shape == (50, 1, 2, 2) and tasks.shape == labels.shape == (50,)
    assert torch.equal(task[labels], tasks)  # the dream's class belongs to its task


def test_excite_dreams_raise_the_teacher_logit():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x = torch.randint(0, 255, (8, 1, 2, 2), dtype=torch.uint8)
    y = torch.randint(0, 3, (8,))
    task = torch.zeros(8, dtype=torch.long)

    def teacher(inputs, _tasks):
        return net(inputs)

    def score(inputs, labels):
        return net(inputs).gather(1, labels[:, None]).mean().item()

    plain, _, lab = make_dreams(x, y, task, 16, mode="mixup", n_tasks=1, prepare=lambda b: b.float() / 255,
                                generator=torch.Generator().manual_seed(1))
    excited, _, lab2 = make_dreams(x, y, task, 16, mode="mixup+excite", n_tasks=1, prepare=lambda b: b.float() / 255,
                                   generator=torch.Generator().manual_seed(1), teacher=teacher, excite_steps=3,
                                   excite_lr=0.1)
    assert torch.equal(lab, lab2)
    assert score(excited, lab2) > score(plain, lab)


def test_sleep_every_n_wake_steps(seq, tiny_cfg):
    """schedule: steps sleeps on the global wake-step count, not at task ends (48 samples / 16 = 3 steps a task)."""
    learner = Learner(tiny_cfg(sleep={"schedule": "steps", "every_steps": 2, "rem": False}), seq, "class")
    learner.train_task(0)
    assert learner.step == 3 and learner.stats["sleeps"] == 1
    learner.train_task(1)
    assert learner.step == 6 and learner.stats["sleeps"] == 3
    task_end = Learner(tiny_cfg(sleep={"rem": False}), seq, "class")
    task_end.train_task(0)
    assert task_end.stats["sleeps"] == 1


def test_no_sleep_never_merges(seq, tiny_cfg):
    learner = Learner(tiny_cfg(sleep=OFF), seq, "task")
    learner.fit()
    assert learner.stats["sleeps"] == 0 and learner.stats["merged_layers"] == 0
    assert learner.method.snapshot is None and len(learner.memory) > 0  # L1 still fills (for replay)
