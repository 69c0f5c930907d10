"""Experience replay (Chaudhry et al. 2019; Mammoth's ``er``): each step is a new batch plus ``replay_n``
samples drawn from L1 in one forward; every new batch is pushed into L1. Every parameter trains."""

from __future__ import annotations

import torch

from hal_sleep_wake.methods import register
from hal_sleep_wake.methods.base import Method


@register
class ER(Method):
    name = "er"
    uses_memory = True

    def observe(self, x: torch.Tensor, y: torch.Tensor, tasks: torch.Tensor, t: int,
                idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss, _, hits = self.supervised(x, y, tasks, t, replay_n=self.cfg.memory.replay_n)
        self.learner.update(loss)
        self.learner.memory.push(x, y, tasks)
        return loss.detach(), hits
