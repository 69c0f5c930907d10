"""Joint training, the upper bound (Mammoth's ``joint``): nothing is learned while the tasks stream by;
after the last task a freshly initialized network trains on the union of every task's training data
for ``wake.epochs`` passes. Its accuracy matrix has one meaningful row, the last, so its ACC is reported
and its BWT and forgetting are undefined (None in the record)."""

from __future__ import annotations

import torch

from hal_sleep_wake.methods import register
from hal_sleep_wake.methods.base import Method


@register
class Joint(Method):
    name = "joint"
    online = False
    continual = False

    def observe(self, x: torch.Tensor, y: torch.Tensor, tasks: torch.Tensor, t: int,
                idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss, _, hits = self.supervised(x, y, tasks, t)
        self.learner.update(loss)
        return loss.detach(), hits

    def end_task(self, t: int) -> None:
        lr = self.learner
        if t != lr.seq.n_tasks - 1:
            return
        lr.reinitialize()
        seq = lr.seq
        x, y = torch.cat(seq.x_train), torch.cat(seq.y_train)
        tasks = torch.cat([torch.full((len(v),), i, dtype=torch.long, device=lr.dev) for i, v in enumerate(seq.y_train)])
        lr.wake(x, y, tasks, t, desc="joint: all tasks")
