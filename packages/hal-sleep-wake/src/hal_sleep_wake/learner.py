"""One continual learner in one scenario: wake, sleep (NREM, REM, L1 compression), evaluation.

``Learner(cfg, seq, scenario).fit()`` trains the tasks of ``seq`` in order and returns the accuracy
matrix ``R[i, j]`` (accuracy on task j after task i). The method decides what trains:

* ``hal``: LoRA adapters only (the ResNet base is frozen); every wake batch is pushed to L1 and
  ``replay_n`` buffered samples are mixed into each step; sleeps follow ``sleep.schedule``.
* ``finetune``: every parameter, no replay, no sleep. ``ewc``: the same plus the EWC penalty.
  ``er``: every parameter with the same L1 buffer and replay as ``hal``.

The loop does no per-sample Python work: batches are index tensors into uint8 images on the device,
augmentation is one gather, and the loss leaves the device once per task.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch
import torch.nn.functional as F

from hal_sleep_wake.config import HALConfig
from hal_sleep_wake.data import TaskSequence, augment, to_input
from hal_sleep_wake.ewc import EWC, empirical_fisher
from hal_sleep_wake.layout import lora_target_names
from hal_sleep_wake.lora import adapter_norm, add_lora, merge_lora
from hal_sleep_wake.memory import RingBuffer
from hal_sleep_wake.model import build_model, mask_logits
from hal_sleep_wake.sleep import distill_loss, importance_scores, make_dreams


class Learner:
    def __init__(self, cfg: HALConfig, seq: TaskSequence, scenario: str, *, device: str | torch.device = "cpu",
                 seed: int = 0) -> None:
        self.cfg, self.seq, self.scenario = cfg, seq, scenario
        self.dev = torch.device(device)
        self.cuda = self.dev.type == "cuda"
        self.channels_last = self.cuda and cfg.channels_last
        self.gen = torch.Generator(device=self.dev).manual_seed(int(seed))
        self.lora_targets = lora_target_names(cfg.lora, seq.n_tasks, scenario) if cfg.uses_lora else []
        self.model = self._build()
        self.test_x, self.test_y = torch.cat(seq.x_test), torch.cat(seq.y_test)
        self.test_task = torch.cat([torch.full((len(y),), t, dtype=torch.long, device=self.dev)
                                    for t, y in enumerate(seq.y_test)])
        self.test_ends = torch.tensor([len(y) for y in seq.y_test], device=self.dev).cumsum(0)  # tasks are blocks
        self.task_mask = seq.task_mask().to(self.dev)
        self.seen_mask = seq.seen_mask().to(self.dev)
        self.replay_n = cfg.replay_n
        needs_memory = cfg.method in ("hal", "er")
        self.memory = (RingBuffer(cfg.memory.capacity, seq.item_shape, policy=cfg.memory.policy, device=self.dev,
                                  generator=self.gen) if needs_memory else None)
        self.ewc = EWC(cfg.ewc.strength) if cfg.uses_ewc else None
        self.rem_on = cfg.sleeps and cfg.sleep.rem
        # REM teachers: the model at the end of the previous sleep (old tasks), the awake model (current task)
        self.snapshot = self._frozen_copy() if self.rem_on else None
        self.awake = self._frozen_copy() if self.rem_on else None
        self.opt = self._optimizer(cfg.wake.lr)
        self.step = 0
        self.stats: dict[str, Any] = {"sleeps": 0, "merged_layers": 0, "merge_s": 0.0, "nrem_s": 0.0, "rem_s": 0.0,
                                      "compress_s": 0.0, "sleep_s": 0.0, "wake_s": 0.0, "eval_s": 0.0,
                                      "wake_images": 0, "dropped": 0, "rem_loss_first": [], "rem_loss_last": [],
                                      "adapter_norm_at_sleep": []}

    # ---- helpers ------------------------------------------------------------------------------
    def _build(self) -> torch.nn.Module:
        cfg = self.cfg
        model = build_model(self.seq.head_sizes, scenario=self.scenario, width=cfg.model.width,
                            in_channels=self.seq.in_channels, cifar_stem=cfg.model.cifar_stem,
                            norm=cfg.model.norm, norm_groups=cfg.model.norm_groups)
        if self.lora_targets:
            add_lora(model, self.lora_targets, rank=cfg.lora.rank, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout)
        model = model.to(self.dev)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def _frozen_copy(self) -> torch.nn.Module:
        """Same architecture and weights, no gradients (built and loaded: faster than deepcopy of peft modules).

        Built under a forked RNG, so a run with REM draws the same random numbers as one without.
        """
        with torch.random.fork_rng(devices=[]):  # models are initialized on the CPU, then moved
            m = self._build()
        m.load_state_dict(self.model.state_dict())
        for p in m.parameters():
            p.requires_grad_(False)
        return m.eval()

    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def _optimizer(self, lr: float) -> torch.optim.Optimizer:
        w = self.cfg.wake
        params = self.trainable()
        if w.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=w.weight_decay)
        return torch.optim.SGD(params, lr=lr, momentum=w.momentum, weight_decay=w.weight_decay)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.cuda and self.cfg.autocast:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.dev)

    def prepare(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        """uint8 images -> network inputs (augmented when ``train``)."""
        out = to_input(x)
        if train:
            out = augment(out, pad=self.cfg.data.crop_pad, flip=self.cfg.data.flip, generator=self.gen)
        return out.contiguous(memory_format=torch.channels_last) if self.channels_last else out

    def masks(self, tasks: torch.Tensor, current: int) -> torch.Tensor:
        """(B, C) logit masks: a sample's own task block (task-incremental) or all classes seen so far."""
        if self.scenario == "task":
            return self.task_mask[tasks]
        return self.seen_mask[current].expand(len(tasks), -1)

    def logits(self, model: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            out = model(x)
        return mask_logits(out.float(), mask)

    # ---- wake -----------------------------------------------------------------------------------
    def wake_step(self, x: torch.Tensor, y: torch.Tensor, task: int) -> torch.Tensor:
        """One optimizer step on a new batch plus ``replay_n`` samples from L1; the new batch goes to L1."""
        tasks = torch.full((len(y),), task, dtype=torch.long, device=self.dev)
        xs, ys, ts = x, y, tasks
        if self.replay_n and self.memory is not None and len(self.memory):
            xr, yr, tr = self.memory.sample(self.replay_n)
            xs, ys, ts = torch.cat([x, xr]), torch.cat([y, yr]), torch.cat([tasks, tr])
        logits = self.logits(self.model, self.prepare(xs, train=True), self.masks(ts, task))
        loss = F.cross_entropy(logits, ys)
        if self.ewc is not None:
            loss = loss + self.ewc.penalty(self.model)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.memory is not None:
            self.memory.push(x, y, task)
        self.stats["wake_images"] += len(ys)
        return loss.detach()

    def train_task(self, t: int) -> list[float]:
        """Wake over task ``t`` (``epochs`` passes, full batches), sleeping on schedule; mean loss per epoch."""
        cfg = self.cfg
        x, y = self.seq.x_train[t], self.seq.y_train[t]
        n = len(y)
        bs = min(cfg.wake.batch_size, n)
        per_epoch = n // bs
        self.model.train()
        losses = []
        self._sync()
        t0 = time.perf_counter()
        sleep_before = self.stats["sleep_s"]
        for _ in range(cfg.wake.epochs):
            perm = torch.randperm(n, generator=self.gen, device=self.dev)
            epoch = []
            for i in range(per_epoch):
                idx = perm[i * bs : (i + 1) * bs]
                epoch.append(self.wake_step(x[idx], y[idx], t))
                self.step += 1
                if cfg.sleeps and cfg.sleep.schedule == "steps" and self.step % cfg.sleep.every_steps == 0:
                    self.sleep(t)
            losses.append(torch.stack(epoch).mean())
        self._sync()
        self.stats["wake_s"] += time.perf_counter() - t0 - (self.stats["sleep_s"] - sleep_before)
        if cfg.sleeps and cfg.sleep.schedule == "task":
            self.sleep(t)
        if self.ewc is not None:
            self._consolidate_ewc(t)
        return torch.stack(losses).cpu().tolist()

    def _consolidate_ewc(self, t: int) -> None:
        x, y = self.seq.x_train[t], self.seq.y_train[t]
        k = min(self.cfg.ewc.fisher_samples, len(y))
        idx = torch.randperm(len(y), generator=self.gen, device=self.dev)[:k]
        tasks = torch.full((k,), t, dtype=torch.long, device=self.dev)
        fisher = empirical_fisher(self.model, x[idx], y[idx], self.masks(tasks, t), batch=self.cfg.ewc.fisher_batch,
                                  prepare=lambda xb: self.prepare(xb, train=False))
        self.ewc.add_task(fisher, self.model)

    # ---- sleep ----------------------------------------------------------------------------------
    def sleep(self, t: int) -> None:
        """NREM (merge with scale s, reset adapters), REM (distil the merged model on dreams), L1 compression;
        the wake optimizer restarts with a clean state."""
        cfg = self.cfg
        self._sync()
        t0 = time.perf_counter()
        if self.rem_on:
            self.awake.load_state_dict(self.model.state_dict())
        if cfg.sleep.nrem and cfg.uses_lora:
            self.stats["adapter_norm_at_sleep"].append(adapter_norm(self.model))
            t1 = time.perf_counter()
            self.stats["merged_layers"] += merge_lora(self.model, cfg.sleep.scale)
            self._sync()
            self.stats["merge_s"] += time.perf_counter() - t1
        self.stats["nrem_s"] += time.perf_counter() - t0
        if self.rem_on:
            t2 = time.perf_counter()
            self.rem(t)
            self._sync()
            self.stats["rem_s"] += time.perf_counter() - t2
            self.snapshot.load_state_dict(self.model.state_dict())
        if self.memory is not None and cfg.memory.compress and self.memory.fill >= cfg.memory.compress_at:
            t3 = time.perf_counter()
            self.compress(t)
            self.stats["compress_s"] += time.perf_counter() - t3
        self.opt = self._optimizer(cfg.wake.lr)
        self.stats["sleeps"] += 1
        self._sync()
        self.stats["sleep_s"] += time.perf_counter() - t0

    def rem(self, t: int) -> None:
        cfg = self.cfg
        x, y, task = self.memory.contents()
        if len(y) == 0:
            return
        old = bool((task < t).any())
        if not old and cfg.sleep.scale == 1.0 and cfg.sleep.nrem:
            return  # only current-task dreams, and the exact merge left student == teacher: nothing to consolidate

        def teacher(inputs: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
            mask = self.masks(tasks, t)
            out = self.logits(self.awake, inputs, mask)
            if old:
                out = torch.where((tasks < t)[:, None], self.logits(self.snapshot, inputs, mask), out)
            return out

        self.model.eval()  # BatchNorm statistics stay as the wake left them; only LoRA learns
        opt = self._optimizer(cfg.rem.lr if cfg.rem.lr is not None else cfg.wake.lr)
        first = last = None
        for _ in range(cfg.rem.steps):
            inputs, tasks, _labels = make_dreams(
                x, y, task, cfg.rem.batch_size, mode=cfg.rem.dream, n_tasks=self.seq.n_tasks,
                prepare=lambda xb: self.prepare(xb, train=True), generator=self.gen, teacher=teacher,
                excite_steps=cfg.rem.excite_steps, excite_lr=cfg.rem.excite_lr)
            mask = self.masks(tasks, t)
            with torch.no_grad():
                target = teacher(inputs, tasks)
            loss = distill_loss(self.logits(self.model, inputs, mask), target, mask, cfg.rem.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            first = loss.detach() if first is None else first
            last = loss.detach()
        self.model.train()
        if cfg.sleep.nrem:
            self.stats["merged_layers"] += merge_lora(self.model, 1.0)  # REM's adapter, merged exactly
        if first is not None:
            self.stats["rem_loss_first"].append(float(first))
            self.stats["rem_loss_last"].append(float(last))

    @torch.no_grad()
    def compress(self, t: int) -> None:
        """Entropy-aware compression of L1: score every buffered sample with the consolidated model."""
        x, y, task = self.memory.contents()
        self.model.eval()
        scores = torch.cat([
            importance_scores(self.logits(self.model, self.prepare(x[s : s + self.cfg.eval_batch], train=False),
                                          self.masks(task[s : s + self.cfg.eval_batch], t)),
                              y[s : s + self.cfg.eval_batch], self.cfg.memory.importance)
            for s in range(0, len(y), self.cfg.eval_batch)
        ])
        self.model.train()
        self.stats["dropped"] += self.memory.compress(scores, self.cfg.memory.keep)

    # ---- evaluation -----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, current: int) -> list[float]:
        """Test accuracy on every task after training task ``current`` (all test sets in one pass)."""
        self._sync()
        t0 = time.perf_counter()
        self.model.eval()
        x, y, tasks = self.test_x, self.test_y, self.test_task
        hits = []
        for s in range(0, len(y), self.cfg.eval_batch):
            sl = slice(s, s + self.cfg.eval_batch)
            logits = self.logits(self.model, self.prepare(x[sl], train=False), self.masks(tasks[sl], current))
            hits.append(logits.argmax(1) == y[sl])
        hits = torch.cat(hits).cumsum(0)  # correct answers per task block: no bincount (not deterministic on CUDA)
        at_ends = hits[self.test_ends - 1]
        correct = at_ends - torch.cat([at_ends.new_zeros(1), at_ends[:-1]])
        sizes = self.test_ends - torch.cat([self.test_ends.new_zeros(1), self.test_ends[:-1]])
        self.model.train()
        out = (correct / sizes).cpu().tolist()
        self.stats["eval_s"] += time.perf_counter() - t0
        return out

    def fit(self) -> tuple[list[list[float]], list[list[float]]]:
        """Train every task in order; return the accuracy matrix and the per-epoch wake losses per task."""
        matrix, losses = [], []
        for t in range(self.seq.n_tasks):
            losses.append(self.train_task(t))
            matrix.append(self.evaluate(t))
        return matrix, losses
