"""Elastic weight consolidation (Kirkpatrick et al. 2017), a reference method.

After task ``t`` the diagonal empirical Fisher ``F_t`` (mean over training samples of the squared
per-sample gradient of the masked cross-entropy at the true label) and the weights ``theta*_t`` are
stored; later tasks add ``(lambda / 2) * sum_t sum_i F_t,i (theta_i - theta*_t,i)^2`` to the loss.
Per-sample gradients come from ``torch.func`` (``vmap`` over ``grad``) with BatchNorm in eval mode.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hal_sleep_wake.model import mask_logits


class EWC:
    def __init__(self, strength: float) -> None:
        self.strength = float(strength)
        self.terms: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []  # (fisher, anchor)

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """``(lambda/2) sum_t sum_i F_t,i (theta_i - theta*_t,i)^2`` over the stored tasks (0 before any)."""
        params = dict(model.named_parameters())
        total = torch.zeros((), device=next(model.parameters()).device)
        for fisher, anchor in self.terms:
            for name, f in fisher.items():
                total = total + (f * (params[name] - anchor[name]).pow(2)).sum()
        return 0.5 * self.strength * total

    def add_task(self, fisher: dict[str, torch.Tensor], model: nn.Module) -> None:
        anchor = {n: p.detach().clone() for n, p in model.named_parameters() if n in fisher}
        self.terms.append(({n: f.detach() for n, f in fisher.items()}, anchor))


def empirical_fisher(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    *,
    batch: int = 64,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Mean squared per-sample gradient of every trainable parameter.

    ``x``: inputs (prepared by ``prepare`` per chunk, e.g. uint8 -> normalized float), ``y``: labels,
    ``mask``: (N, C) or (C,) bool logit mask of each sample.
    """
    from torch.func import functional_call, grad, vmap

    was_training = model.training
    model.eval()
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = dict(model.named_buffers())
    mask = mask.expand(len(y), -1) if mask.dim() == 1 else mask

    def loss_one(p, xi, yi, mi):
        logits = functional_call(model, (p, buffers), (xi[None],))
        return F.cross_entropy(mask_logits(logits.float(), mi[None]), yi[None])

    per_sample = vmap(grad(loss_one), in_dims=(None, 0, 0, 0))
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    for start in range(0, len(y), batch):
        sl = slice(start, start + batch)
        xb = prepare(x[sl]) if prepare is not None else x[sl]
        grads = per_sample(params, xb, y[sl], mask[sl])
        for n, g in grads.items():
            fisher[n] += g.pow(2).sum(0)
    model.train(was_training)
    return {n: f / max(len(y), 1) for n, f in fisher.items()}
