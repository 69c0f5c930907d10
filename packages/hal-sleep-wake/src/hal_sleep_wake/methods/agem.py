"""A-GEM (Chaudhry et al. 2019, "Efficient Lifelong Learning with A-GEM"; Mammoth's ``agem``).

The gradient ``g`` of the new batch is projected when it conflicts with the gradient ``g_ref`` of
``replay_n`` samples drawn from L1: ``g <- g - (g.g_ref / g_ref.g_ref) g_ref`` if ``g.g_ref < 0``.
The test is a ``torch.where`` on the device, so a step needs no host synchronization. L1 is the shared
buffer (every wake batch pushed, reservoir), not Mammoth's one batch stored per finished task.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hal_sleep_wake.methods import register
from hal_sleep_wake.methods.base import Method


@register
class AGEM(Method):
    name = "agem"
    uses_memory = True

    def observe(self, x: torch.Tensor, y: torch.Tensor, tasks: torch.Tensor, t: int,
                idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lr = self.learner
        params = lr.trainable()
        raw = lr.forward(lr.model, lr.prepare(x, train=True))
        logits = lr.masked(raw, lr.scenario.train_mask(tasks, t))
        loss = F.cross_entropy(logits, y)
        grads = _grad(loss, params)
        if len(lr.memory):
            ref = _grad(self.buffered_ce(self.cfg.memory.replay_n, t), params)
            dot = sum((g * r).sum() for g, r in zip(grads, ref))
            norm = sum(r.pow(2).sum() for r in ref)
            coef = torch.where(dot < 0, dot / norm.clamp_min(1e-12), torch.zeros_like(dot))
            grads = tuple(g - coef * r for g, r in zip(grads, ref))
        for p, g in zip(params, grads):
            p.grad = g
        lr.opt.step()
        lr.memory.push(x, y, tasks)
        return loss.detach(), (logits.argmax(1) == y).sum()


def _grad(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> tuple[torch.Tensor, ...]:
    """d loss / d params, zeros for parameters the loss does not reach (other tasks' heads)."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return tuple(torch.zeros_like(p) if g is None else g for p, g in zip(params, grads))
