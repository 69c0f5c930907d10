"""One continual learner in one scenario: the model, L1, the wake loop, L1's policy and the tests.

``Learner(cfg, seq, scenario).fit()`` trains the tasks of ``seq`` in order and returns a
:class:`FitResult` with one accuracy matrix per view (``R[i][j]``: accuracy on task j after task i).
What trains and how a batch updates it is the method's business (``hal_sleep_wake.methods``, one
file per method); the learner calls its hooks, applies L1's policy at the end of every task
(class-balanced compression, the same for every replaying method) and tests every task.

The loop does no per-sample Python work and no per-step host synchronization: the training data is
uint8 on the device, a batch is an index tensor, augmentation is one gather, the loss and the number
of correct predictions stay on the device until the end of an epoch (one read for the progress bar).
On CUDA the forward runs in channels-last memory format and bf16 autocast (``channels_last``,
``autocast``); the CPU path is plain float32.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from typing import Any

import torch
from tqdm.auto import tqdm

from hal_sleep_wake.config import HALConfig
from hal_sleep_wake.data import Normalizer, TaskSequence, augment
from hal_sleep_wake.layout import lora_target_names
from hal_sleep_wake.lora import add_lora
from hal_sleep_wake.memory import RingBuffer
from hal_sleep_wake.methods import get_method
from hal_sleep_wake.model import build_model, mask_logits
from hal_sleep_wake.scenarios import SCENARIOS


@dataclasses.dataclass
class FitResult:
    matrices: dict[str, list[list[float]]]  # view -> R[i][j]
    losses: list[list[float]]  # per task, the mean wake loss of each epoch
    train_acc: list[list[float]]  # per task, the accuracy on the new batches of each epoch


class Learner:
    def __init__(self, cfg: HALConfig, seq: TaskSequence, scenario: str, *, device: str | torch.device = "cpu",
                 seed: int = 0, progress: bool = False) -> None:
        self.cfg, self.seq, self.seed, self.progress = cfg, seq, int(seed), progress
        self.dev = torch.device(device)
        self.cuda = self.dev.type == "cuda"
        self.channels_last = self.cuda and cfg.channels_last
        self.gen = torch.Generator(device=self.dev).manual_seed(self.seed)
        self.scenario = SCENARIOS[scenario](seq.task_mask().to(self.dev), seq.seen_mask().to(self.dev))
        self.norm = Normalizer(cfg.data.mean, cfg.data.std, seq.in_channels, self.dev)
        method_cls = get_method(cfg.method)
        self.lora_targets = lora_target_names(cfg.lora, seq.n_tasks, scenario) if method_cls.uses_lora else []
        self.model = self._build()
        self.test_x, self.test_y = torch.cat(seq.x_test), torch.cat(seq.y_test)
        self.test_task = torch.cat([torch.full((len(y),), t, dtype=torch.long, device=self.dev)
                                    for t, y in enumerate(seq.y_test)])
        self.test_ends = torch.tensor([len(y) for y in seq.y_test], device=self.dev).cumsum(0)  # tasks are blocks
        self.memory = (RingBuffer(cfg.memory.capacity, seq.item_shape, policy=cfg.memory.policy, device=self.dev,
                                  generator=self.gen, logit_dim=seq.n_classes if method_cls.keeps_logits else None)
                       if method_cls.uses_memory else None)
        self.opt = self.make_optimizer()
        self.step = 0
        self.stats: dict[str, Any] = {"sleeps": 0, "merges": 0, "merged_layers": 0, "merge_s": 0.0, "nrem_s": 0.0,
                                      "rem_s": 0.0, "compress_s": 0.0, "sleep_s": 0.0, "wake_s": 0.0, "eval_s": 0.0,
                                      "wake_images": 0, "dropped": 0, "rem_loss_first": [], "rem_loss_last": [],
                                      "adapter_norm_at_sleep": []}
        self.method = method_cls(self)

    # ---- the model --------------------------------------------------------------------------------
    def _build(self) -> torch.nn.Module:
        cfg = self.cfg
        model = build_model(self.seq.head_sizes, shared_head=self.scenario.shared_head,
                            width=cfg.model.width, in_channels=self.seq.in_channels, cifar_stem=cfg.model.cifar_stem,
                            norm=cfg.model.norm, norm_groups=cfg.model.norm_groups, arch=cfg.model.arch,
                            hidden=cfg.model.hidden, image_shape=tuple(self.seq.item_shape))
        if self.lora_targets:
            add_lora(model, self.lora_targets, rank=cfg.lora.rank, alpha=cfg.lora.alpha, impl=cfg.lora.impl)
        model = model.to(self.dev)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def frozen_copy(self) -> torch.nn.Module:
        """Same architecture and weights, no gradients (built under a forked RNG, so a run that makes
        copies draws the same random numbers as one that does not)."""
        with torch.random.fork_rng(devices=[]):  # models are initialized on the CPU, then moved
            m = self._build()
        m.load_state_dict(self.model.state_dict())
        for p in m.parameters():
            p.requires_grad_(False)
        return m.eval()

    def reinitialize(self) -> None:
        """A fresh network (new random init from the global generator) and a fresh wake optimizer."""
        self.model = self._build()
        self.opt = self.make_optimizer()

    def trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def make_optimizer(self, kind: str | None = None, lr: float | None = None, momentum: float | None = None,
                       weight_decay: float | None = None) -> torch.optim.Optimizer:
        """An optimizer over the trainable parameters; unset arguments are the wake settings."""
        w = self.cfg.wake
        kind, lr = kind or w.optimizer, w.lr if lr is None else lr
        momentum = w.momentum if momentum is None else momentum
        wd = w.weight_decay if weight_decay is None else weight_decay
        # fused kernels: one call for all parameters (CPU: about 5x faster than the per-tensor loop)
        fused = self.dev.type in ("cpu", "cuda")
        if kind == "adamw":
            return torch.optim.AdamW(self.trainable(), lr=lr, weight_decay=wd, fused=fused)
        return torch.optim.SGD(self.trainable(), lr=lr, momentum=momentum, weight_decay=wd, fused=fused)

    def update(self, loss: torch.Tensor) -> None:
        """One optimizer step of the wake optimizer on ``loss``."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.cuda and self.cfg.autocast:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.dev)

    def prepare(self, x: torch.Tensor, train: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 images -> network inputs (augmented when ``train``, from ``generator`` or the wake's)."""
        out = x.float() / 255.0
        if train:
            d = self.cfg.data
            out = augment(out, pad=d.crop_pad, flip=d.flip, mode=d.pad_mode,
                          generator=generator if generator is not None else self.gen)
        out = self.norm.from_unit(out)
        return out.contiguous(memory_format=torch.channels_last) if self.channels_last else out

    def forward(self, model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """Raw float32 logits over every class of the sequence."""
        with self.autocast():
            out = model(inputs)
        return out.float()

    @staticmethod
    def masked(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask_logits(logits, mask)

    # ---- training ---------------------------------------------------------------------------------
    def wake(self, x: torch.Tensor, y: torch.Tensor, tasks: torch.Tensor, t: int,
             desc: str = "") -> tuple[list[float], list[float]]:
        """``wake.epochs`` passes over (x, y, tasks) in full batches through the method; per-epoch loss and
        training accuracy (one host read per epoch)."""
        cfg = self.cfg
        n = len(y)
        bs = min(cfg.wake.batch_size, n)
        per_epoch = n // bs
        self.model.train()
        losses, accs = [], []
        bar = tqdm(total=cfg.wake.epochs, desc=desc or f"task {t + 1}/{self.seq.n_tasks}", unit="epoch",
                   disable=not self.progress, file=sys.stderr, leave=True, dynamic_ncols=True)
        with bar:
            for _ in range(cfg.wake.epochs):
                perm = torch.randperm(n, generator=self.gen, device=self.dev)
                loss_sum = torch.zeros((), device=self.dev)
                hits = torch.zeros((), dtype=torch.long, device=self.dev)
                for i in range(per_epoch):
                    idx = perm[i * bs : (i + 1) * bs]
                    loss, correct = self.method.observe(x[idx], y[idx], tasks[idx], t, idx)
                    loss_sum += loss
                    hits += correct
                    self.step += 1
                    self.stats["wake_images"] += bs
                stats = torch.stack([loss_sum / per_epoch, hits.float() / (per_epoch * bs)]).tolist()
                losses.append(stats[0])
                accs.append(stats[1])
                bar.set_postfix(loss=f"{stats[0]:.3f}", train_acc=f"{stats[1]:.3f}", refresh=False)
                bar.update()
        return losses, accs

    def train_task(self, t: int) -> tuple[list[float], list[float]]:
        """Task ``t``: the method's hooks around the wake loop, then L1's policy."""
        self.method.begin_task(t)
        self.sync()
        t0 = time.perf_counter()
        sleep_before = self.stats["sleep_s"]
        losses, accs = [], []
        if self.method.online:
            x, y = self.seq.x_train[t], self.seq.y_train[t]
            tasks = torch.full((len(y),), t, dtype=torch.long, device=self.dev)
            losses, accs = self.wake(x, y, tasks, t, desc=f"{self.cfg.method} task {t + 1}/{self.seq.n_tasks} "
                                                          f"({self.seq.names[t]})")
        self.sync()
        self.stats["wake_s"] += time.perf_counter() - t0 - (self.stats["sleep_s"] - sleep_before)
        self.method.end_task(t)
        self.buffer_policy(t)
        return losses, accs

    @torch.no_grad()
    def buffer_policy(self, t: int) -> None:
        """Entropy-aware compression of L1 at the end of a task, class-balanced, scored by the current model."""
        m = self.cfg.memory
        if self.memory is None or not m.compress or self.memory.fill < m.compress_at:
            return
        t0 = time.perf_counter()
        from hal_sleep_wake.sleep import importance_scores

        x, y, task = self.memory.contents()
        self.model.eval()
        eb = self.cfg.eval_batch
        scores = torch.cat([
            importance_scores(self.masked(self.forward(self.model, self.prepare(x[s : s + eb], train=False)),
                                          self.scenario.train_mask(task[s : s + eb], t)), y[s : s + eb], m.importance)
            for s in range(0, len(y), eb)
        ])
        self.model.train()
        self.stats["dropped"] += self.memory.compress(scores, m.keep)
        self.stats["compress_s"] += time.perf_counter() - t0

    # ---- evaluation -------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, current: int) -> dict[str, list[float]]:
        """Test accuracy on every task after training task ``current``, per view (one forward pass)."""
        self.sync()
        t0 = time.perf_counter()
        self.model.eval()
        x, y, tasks = self.test_x, self.test_y, self.test_task
        eb = self.cfg.eval_batch
        raw = torch.cat([self.forward(self.model, self.prepare(x[s : s + eb], train=False))
                         for s in range(0, len(y), eb)])
        self.model.train()
        sizes = self.test_ends - torch.cat([self.test_ends.new_zeros(1), self.test_ends[:-1]])
        rows = []
        for view in self.scenario.views:
            hits = (self.masked(raw, self.scenario.eval_mask(view, tasks, current)).argmax(1) == y).cumsum(0)
            at_ends = hits[self.test_ends - 1]  # correct answers per task block: no bincount (not deterministic on CUDA)
            rows.append((at_ends - torch.cat([at_ends.new_zeros(1), at_ends[:-1]])) / sizes)
        out = dict(zip(self.scenario.views, torch.stack(rows).cpu().tolist()))
        self.stats["eval_s"] += time.perf_counter() - t0
        return out

    def fit(self) -> FitResult:
        """Train every task in order and test after each; see :class:`FitResult`."""
        matrices: dict[str, list[list[float]]] = {v: [] for v in self.scenario.views}
        losses, accs = [], []
        for t in range(self.seq.n_tasks):
            loss, acc = self.train_task(t)
            losses.append(loss)
            accs.append(acc)
            for view, row in self.evaluate(t).items():
                matrices[view].append(row)
            if self.progress:
                tested = ", ".join(f"{v}-IL acc on it {matrices[v][-1][t]:.3f}" for v in self.scenario.views)
                print(f"  after task {t + 1}/{self.seq.n_tasks}: {tested}", file=sys.stderr, flush=True)
        return FitResult(matrices, losses, accs)
