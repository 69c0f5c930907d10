"""SGD fine-tuning (Mammoth's ``sgd``): every parameter trains on the current task only; the lower bound."""

from __future__ import annotations

import torch

from hal_sleep_wake.methods import register
from hal_sleep_wake.methods.base import Method


@register
class Finetune(Method):
    name = "finetune"

    def observe(self, x: torch.Tensor, y: torch.Tensor, tasks: torch.Tensor, t: int,
                idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss, _, hits = self.supervised(x, y, tasks, t)
        self.learner.update(loss)
        return loss.detach(), hits
