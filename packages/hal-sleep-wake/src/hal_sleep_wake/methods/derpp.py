"""DER++ (Buzzega et al. 2020, "Dark Experience for General Continual Learning"; Mammoth's ``derpp``).

The loss of a step is the cross-entropy of the new batch, plus ``alpha`` times the mean squared error
between the network's logits on one L1 draw and the logits stored with those samples when they were
pushed, plus ``beta`` times the cross-entropy of a second, independent L1 draw (``replay_n`` samples
each, separate forward passes as in Mammoth, which matters with BatchNorm). L1 keeps each pushed
sample's logits (raw, every class: nothing masked, as Mammoth stores them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hal_sleep_wake.methods import register
from hal_sleep_wake.methods.base import Method


@register
class DERPP(Method):
    name = "derpp"
    uses_memory = True
    keeps_logits = True

    def observe(self, x: torch.Tensor, y: torch.Tensor, tasks: torch.Tensor, t: int,
                idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lr, d, n = self.learner, self.cfg.der, self.cfg.memory.replay_n
        loss, raw, hits = self.supervised(x, y, tasks, t)
        if len(lr.memory):
            b1 = lr.memory.sample(n)
            loss = loss + d.alpha * F.mse_loss(lr.forward(lr.model, lr.prepare(b1.x, train=True)), b1.logits)
            loss = loss + d.beta * self.buffered_ce(n, t)
        lr.update(loss)
        lr.memory.push(x, y, tasks, logits=raw.detach())
        return loss.detach(), hits
