"""EWC (Kirkpatrick et al. 2017): fine-tuning plus the quadratic penalty of :mod:`hal_sleep_wake.ewc`,
with the diagonal empirical Fisher of each finished task (per-sample gradients from ``torch.func``)."""

from __future__ import annotations

import torch

from hal_sleep_wake.ewc import EWC as Penalty
from hal_sleep_wake.ewc import empirical_fisher
from hal_sleep_wake.methods import register
from hal_sleep_wake.methods.base import Method


@register
class EWC(Method):
    name = "ewc"

    def __init__(self, learner) -> None:
        super().__init__(learner)
        self.penalty = Penalty(self.cfg.ewc.strength)

    def observe(self, x: torch.Tensor, y: torch.Tensor, tasks: torch.Tensor, t: int,
                idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss, _, hits = self.supervised(x, y, tasks, t)
        loss = loss + self.penalty.penalty(self.learner.model)
        self.learner.update(loss)
        return loss.detach(), hits

    def end_task(self, t: int) -> None:
        lr, e = self.learner, self.cfg.ewc
        x, y = lr.seq.x_train[t], lr.seq.y_train[t]
        k = min(e.fisher_samples, len(y))
        idx = torch.randperm(len(y), generator=lr.gen, device=lr.dev)[:k]
        tasks = torch.full((k,), t, dtype=torch.long, device=lr.dev)
        fisher = empirical_fisher(lr.model, x[idx], y[idx], lr.scenario.train_mask(tasks, t), batch=e.fisher_batch,
                                  prepare=lambda xb: lr.prepare(xb, train=False))
        self.penalty.add_task(fisher, lr.model)
