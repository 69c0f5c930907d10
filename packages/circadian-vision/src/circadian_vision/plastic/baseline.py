"""The naive baseline: a linear softmax head fine-tuned by SGD on the same features, phase after phase.

No memory, no protection, no replay: exactly what catastrophic forgetting is measured against. It
has the same interface as the brains (``train_step``, ``predict``, ``end_phase``, ``step_stats``,
``core_snapshot``/``core_drift``), so the same trainer runs all three.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional as F

from circadian_vision.plastic.block import MODES


@dataclasses.dataclass
class NaiveLinearConfig:
    """Hyper-parameters of :class:`NaiveLinearHead` (params.yaml ``naive:``)."""

    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.5
    momentum: float = 0.0  # sgd only
    normalize_input: bool = True  # L2-normalize features, as the brains do
    panic_gain: float = 1.0  # lr multiplier in panic mode (1: panic is ignored)


class NaiveLinearHead(nn.Module):
    """``logits = W @ normalize(x) + b``, one SGD step on the cross-entropy per batch."""

    def __init__(self, in_dim: int, num_classes: int, config: NaiveLinearConfig | None = None, *, seed: int = 0) -> None:
        super().__init__()
        self.config = cfg = config or NaiveLinearConfig()
        gen = torch.Generator().manual_seed(seed)
        bound = 1.0 / in_dim**0.5
        self.linear = nn.Linear(in_dim, num_classes)
        with torch.no_grad():
            self.linear.weight.copy_((torch.rand(num_classes, in_dim, generator=gen) * 2 - 1) * bound)
            self.linear.bias.copy_((torch.rand(num_classes, generator=gen) * 2 - 1) * bound)
        if cfg.optimizer == "sgd":
            self.opt: torch.optim.Optimizer = torch.optim.SGD(self.linear.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        elif cfg.optimizer == "adam":
            self.opt = torch.optim.Adam(self.linear.parameters(), lr=cfg.lr)
        else:
            raise ValueError(f"naive head: unknown optimizer {cfg.optimizer!r}; use sgd or adam")
        self.in_dim = int(in_dim)
        self.num_classes = int(num_classes)

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return F.normalize(x, dim=1) if self.config.normalize_input else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self._prep(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).argmax(1)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, mode: str = "plastic") -> dict[str, float]:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        y = y.long().to(x.device)
        for group in self.opt.param_groups:
            group["lr"] = self.config.lr * (self.config.panic_gain if mode == "panic" else 1.0)
        logits = self(x)
        acc_before = float((logits.argmax(1) == y).float().mean())
        loss = F.cross_entropy(logits, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"acc_before": acc_before, "loss": float(loss.detach()), "active_fraction": 1.0}

    def end_phase(self, consolidate: bool) -> dict[str, float]:  # nothing to consolidate
        return {}

    def sparsity(self) -> float:
        """A dense layer: every unit takes part in every prediction."""
        return 1.0

    def step_stats(self) -> dict[str, float]:
        return {"weight_norm": float(self.linear.weight.detach().norm())}

    def core_snapshot(self) -> torch.Tensor:
        return self.linear.weight.detach().clone()

    def core_drift(self, snapshot: torch.Tensor) -> float:
        den = float(snapshot.norm())
        return float((self.linear.weight.detach() - snapshot).norm()) / den if den > 0 else float("nan")
