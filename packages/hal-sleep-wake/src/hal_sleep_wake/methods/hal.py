"""HAL: hierarchical LoRA sleep-wake (the seed's method).

Awake, only the LoRA adapters (L2) train, on each new batch plus ``replay_n`` samples from L1; every
new batch is pushed into L1. A sleep (end of every task, or every ``every_steps`` wake steps) bundles
three changes, each with its own switch (the fourth, L1 compression, is the buffer policy every
replaying method shares, applied by the learner at the end of every task):

* ``sleep.nrem`` - NREM: ``W <- W + s (alpha/r) B A`` on every adapted layer, adapters reset;
* ``sleep.rem`` - REM: dreams from L1 distilled into a fresh adapter (:mod:`hal_sleep_wake.sleep`),
  with REM's own optimizer and its own random generator, plus cross-entropy on real buffered samples;
  old-task dreams are distilled only over the classes their teacher (the snapshot) was trained on;
* ``sleep.reset_optimizer`` - the wake optimizer restarts with a clean state.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from hal_sleep_wake.lora import adapter_norm, merge_lora
from hal_sleep_wake.methods import register
from hal_sleep_wake.methods.base import Method
from hal_sleep_wake.sleep import distill_loss, make_dreams

REM_STREAM = 0x5EED  # offset of REM's generator seed from the run's seed


@register
class HAL(Method):
    name = "hal"
    uses_lora = True
    uses_memory = True

    def __init__(self, learner) -> None:
        super().__init__(learner)
        s = self.cfg.sleep
        self.rem_on = s.rem
        # REM teachers: the model at the end of the previous sleep (old tasks), the awake model (current task)
        self.snapshot = learner.frozen_copy() if self.rem_on else None
        self.awake = learner.frozen_copy() if self.rem_on else None
        self.rem_gen = torch.Generator(device=learner.dev).manual_seed(int(learner.seed) + REM_STREAM)

    def observe(self, x: torch.Tensor, y: torch.Tensor, tasks: torch.Tensor, t: int,
                idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lr = self.learner
        loss, _, hits = self.supervised(x, y, tasks, t, replay_n=self.cfg.memory.replay_n)
        lr.update(loss)
        lr.memory.push(x, y, tasks)
        s = self.cfg.sleep
        if self.cfg.sleeps and s.schedule == "steps" and (lr.step + 1) % s.every_steps == 0:
            self.sleep(t)
        return loss.detach(), hits

    def end_task(self, t: int) -> None:
        if self.cfg.sleeps and self.cfg.sleep.schedule == "task":
            self.sleep(t)

    # ---- sleep --------------------------------------------------------------------------------
    def sleep(self, t: int) -> None:
        lr, s, st = self.learner, self.cfg.sleep, self.learner.stats
        lr.sync()
        t0 = time.perf_counter()
        if self.rem_on:
            self.awake.load_state_dict(lr.model.state_dict())
        if s.nrem:
            st["adapter_norm_at_sleep"].append(adapter_norm(lr.model))
            t1 = time.perf_counter()
            st["merged_layers"] += merge_lora(lr.model, s.scale)
            lr.sync()
            st["merge_s"] += time.perf_counter() - t1
            st["merges"] += 1
        st["nrem_s"] += time.perf_counter() - t0
        if self.rem_on:
            t2 = time.perf_counter()
            self.rem(t)
            lr.sync()
            st["rem_s"] += time.perf_counter() - t2
            self.snapshot.load_state_dict(lr.model.state_dict())
        if s.reset_optimizer:
            lr.opt = lr.make_optimizer()
        st["sleeps"] += 1
        lr.sync()
        st["sleep_s"] += time.perf_counter() - t0

    def _teacher_masks(self, tasks: torch.Tensor, t: int) -> torch.Tensor:
        """Per dream, the logits its teacher can speak for: the snapshot knows tasks < t, the awake model <= t."""
        sc = self.learner.scenario
        return torch.where((tasks < t)[:, None], sc.known_mask(tasks, t - 1), sc.known_mask(tasks, t))

    def rem(self, t: int) -> None:
        lr, cfg = self.learner, self.cfg
        x, y, task = lr.memory.contents()
        if len(y) == 0:
            return
        old = bool((task < t).any())  # one host read per sleep
        if not old and cfg.sleep.scale == 1.0 and cfg.sleep.nrem:
            return  # only current-task dreams and an exact merge left student == teacher: nothing to consolidate

        def teacher(inputs: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
            out = lr.forward(self.awake, inputs)
            if old:
                out = torch.where((tasks < t)[:, None], lr.forward(self.snapshot, inputs), out)
            return lr.masked(out, self._teacher_masks(tasks, t))

        r = cfg.rem
        lr.model.eval()  # norm statistics stay as the wake left them; only LoRA learns
        opt = lr.make_optimizer(r.optimizer, r.lr, r.momentum, r.weight_decay)
        losses = []
        for _ in range(r.steps):
            inputs, tasks, _labels = make_dreams(
                x, y, task, r.batch_size, mode=r.dream, n_tasks=lr.seq.n_tasks,
                prepare=lambda xb: lr.prepare(xb, train=True, generator=self.rem_gen), generator=self.rem_gen,
                teacher=teacher, excite_steps=r.excite_steps, excite_lr=r.excite_lr,
                pixel_range=(lr.norm.low, lr.norm.high))
            mask = self._teacher_masks(tasks, t)
            with torch.no_grad():
                target = teacher(inputs, tasks)
            real = lr.memory.sample(r.ce_batch if r.ce_weight > 0 else 0, generator=self.rem_gen)
            # dreams and real samples in one forward (norm layers in eval mode: the same as two)
            out = lr.forward(lr.model, torch.cat([inputs, lr.prepare(real.x, train=True, generator=self.rem_gen)]))
            n = len(tasks)
            loss = distill_loss(lr.masked(out[:n], mask), target, mask, r.temperature)
            if len(real):
                ce = F.cross_entropy(lr.masked(out[n:], lr.scenario.train_mask(real.task, t)), real.y)
                loss = loss + r.ce_weight * ce
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        lr.model.train()
        if cfg.sleep.nrem:
            lr.stats["merged_layers"] += merge_lora(lr.model, 1.0)  # REM's adapter, merged exactly
        if losses:
            lr.stats["rem_loss_first"].append(float(losses[0]))
            lr.stats["rem_loss_last"].append(float(losses[-1]))

