"""DER++ (Buzzega et al. 2020, "Dark Experience for General Continual Learning"; Mammoth's ``derpp``).

The loss of a step is the cross-entropy of the new batch, plus ``alpha`` times the mean squared error
between the network's logits on one L1 draw and the logits stored with those samples when they were
pushed, plus ``beta`` times the cross-entropy of a second, independent L1 draw (``replay_n`` samples
each, separate forward passes as in Mammoth, which matters with BatchNorm). L1 keeps each pushed
sample's logits (raw, every class: nothing masked, as Mammoth stores them).

``der.one_forward`` (a diagnostic, not Mammoth's) runs the three batches through one forward pass, so
that BatchNorm normalizes them together as it does ER's concatenated batch; with per-sample norms
(GroupNorm) it is the same loss.
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
        if d.one_forward and len(lr.memory):
            return self._one_forward(x, y, tasks, t)
        loss, raw, hits = self.supervised(x, y, tasks, t)
        if len(lr.memory):
            b1 = lr.memory.sample(n)
            loss = loss + d.alpha * F.mse_loss(lr.forward(lr.model, lr.prepare(b1.x, train=True)), b1.logits)
            loss = loss + d.beta * self.buffered_ce(n, t)
        lr.update(loss)
        lr.memory.push(x, y, tasks, logits=raw.detach())
        return loss.detach(), hits

    def _one_forward(self, x: torch.Tensor, y: torch.Tensor, tasks: torch.Tensor,
                     t: int) -> tuple[torch.Tensor, torch.Tensor]:
        lr, d, n = self.learner, self.cfg.der, self.cfg.memory.replay_n
        b1, b2 = lr.memory.sample(n), lr.memory.sample(n)
        raw = lr.forward(lr.model, lr.prepare(torch.cat([x, b1.x, b2.x]), train=True))
        k, k1 = len(y), len(y) + len(b1)
        ce = F.cross_entropy(lr.masked(raw[:k], lr.scenario.train_mask(tasks, t)), y)
        loss = ce + d.alpha * F.mse_loss(raw[k:k1], b1.logits)
        loss = loss + d.beta * F.cross_entropy(lr.masked(raw[k1:], lr.scenario.train_mask(b2.task, t)), b2.y)
        lr.update(loss)
        lr.memory.push(x, y, tasks, logits=raw[:k].detach())
        hits = (lr.masked(raw[:k], lr.scenario.train_mask(tasks, t)).argmax(1) == y).sum()
        return loss.detach(), hits
