"""TriarchicBrain: a sparse base, a slow protected core and a fast decaying context.

Base (structural neurogenesis): a sparse random projection ``P`` (H x d, unit rows) and k-WTA::

    pre = normalize(x) @ P.T          (B, H) cosine of the input with each neuron
    h   = normalize(top_k(pre))       k of H units active (32 of 8192 = 0.39% in the prototype)

An input whose best cosine is below ``novelty_threshold`` is unfamiliar: the least useful neuron
(lowest activation-frequency EMA among the unlocked ones) is replaced by a neuron tuned to it,
with its core and context synapses and their importance reset.

Core (consolidation) and context (fast adaptation) both read ``h``; the logits are their sum::

    delta     = (onehot(y) - softmax(core + context)).T @ h / B
    context   = (context + context_lr * delta) * context_decay     fast, transient
    brake     = clamp(importance * brake_gain, 0, 1)
    core     += core_lr * delta * (1 - brake)                         slow, protected
    importance += lock_rate * onehot(y)[correct].T @ h[correct] / B   lock what predicted right

Without input the context decays toward zero (:meth:`decay_context`). In ``panic`` mode the
context rate is multiplied by ``panic_gain`` and the core rate by ``panic_core_scale``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from circadian_vision.plastic.block import MODES


@dataclasses.dataclass
class TriarchicConfig:
    """Hyper-parameters of a :class:`TriarchicBrain` (params.yaml ``triarchic:``)."""

    hidden_dim: int = 8192
    k: int = 32
    density: float = 0.1  # fraction of nonzero entries of each projection row
    core_lr: float = 0.05
    context_lr: float = 0.5
    context_decay: float = 0.8
    brake_gain: float = 2.0
    lock_rate: float = 2.0
    novelty_threshold: float = 0.5  # best cosine below this: the input is unfamiliar
    max_births: int = 4  # new neurons per step at most
    lock_threshold: float = 0.5  # a neuron whose summed importance reaches this is never recycled
    utility_ema: float = 0.99
    panic_gain: float = 2.0  # context rate multiplier in panic mode
    panic_core_scale: float = 1.0  # core rate multiplier in panic mode


class TriarchicBrain(nn.Module):
    """Base / core / context brain on feature vectors (see the module docstring)."""

    def __init__(self, in_dim: int, num_classes: int, config: TriarchicConfig | None = None, *, seed: int = 0) -> None:
        super().__init__()
        self.config = cfg = config or TriarchicConfig()
        if not 1 <= cfg.k <= cfg.hidden_dim:
            raise ValueError(f"triarchic k must be in 1..hidden_dim ({cfg.hidden_dim}), got {cfg.k}")
        if not 0.0 < cfg.density <= 1.0:
            raise ValueError(f"triarchic density must be in (0, 1], got {cfg.density}")
        self.in_dim = int(in_dim)
        self.num_classes = int(num_classes)
        gen = torch.Generator().manual_seed(seed)
        mask = torch.rand(cfg.hidden_dim, in_dim, generator=gen) < cfg.density
        mask[torch.arange(cfg.hidden_dim), torch.randint(0, in_dim, (cfg.hidden_dim,), generator=gen)] = True
        proj = torch.randn(cfg.hidden_dim, in_dim, generator=gen) * mask
        self.register_buffer("projection", F.normalize(proj, dim=1))
        self.register_buffer("w_core", torch.zeros(num_classes, cfg.hidden_dim))
        self.register_buffer("w_context", torch.zeros(num_classes, cfg.hidden_dim))
        self.register_buffer("importance", torch.zeros(num_classes, cfg.hidden_dim))
        self.register_buffer("utility", torch.full((cfg.hidden_dim,), cfg.k / cfg.hidden_dim))
        self.births = 0
        self.steps = 0

    # ---- base ---------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pre, h)``: dense cosines (B, H) and the normalized k-WTA code (B, H)."""
        pre = F.normalize(x.float(), dim=1) @ self.projection.T
        vals, idx = pre.topk(self.config.k, dim=1)
        h = torch.zeros_like(pre).scatter_(1, idx, vals)
        return pre, F.normalize(h, dim=1)

    def locked(self) -> torch.Tensor:
        """Neurons whose summed synaptic importance reached ``lock_threshold``."""
        return self.importance.sum(0) >= self.config.lock_threshold

    @torch.no_grad()
    def neurogenesis(self, x: torch.Tensor) -> torch.Tensor:
        """Give each unfamiliar input of ``x`` (up to ``max_births``) a neuron; returns the replaced ones."""
        cfg = self.config
        pre, _ = self.encode(x)
        familiarity = pre.max(1).values
        novel = (familiarity < cfg.novelty_threshold).nonzero().flatten()
        if len(novel) == 0 or cfg.max_births <= 0:
            return torch.empty(0, dtype=torch.long)
        novel = novel[torch.sort(familiarity[novel], stable=True).indices][: cfg.max_births]
        score = torch.where(self.locked(), torch.full_like(self.utility, float("inf")), self.utility)
        n = min(len(novel), int(torch.isfinite(score).sum()))
        if n == 0:
            return torch.empty(0, dtype=torch.long)
        victims = torch.sort(score, stable=True).indices[:n]
        self.projection[victims] = F.normalize(x[novel[:n]].float(), dim=1)
        self.w_core[:, victims] = 0.0
        self.w_context[:, victims] = 0.0
        self.importance[:, victims] = 0.0
        self.utility[victims] = self.utility.mean()
        self.births += n
        return victims

    # ---- core + context -----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.encode(x)
        return h @ self.w_core.T + h @ self.w_context.T

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).argmax(1)

    @torch.no_grad()
    def predict_core(self, x: torch.Tensor) -> torch.Tensor:
        """The consolidated pathway alone (context left out)."""
        _, h = self.encode(x)
        return (h @ self.w_core.T).argmax(1)

    def eval_views(self) -> dict[str, Any]:
        return {"core": self.predict_core}

    @torch.no_grad()
    def decay_context(self, steps: int = 1) -> None:
        """What happens to the context with no input: it shrinks by ``context_decay`` per step."""
        self.w_context.mul_(self.config.context_decay**steps)

    @torch.no_grad()
    def train_step(self, x: torch.Tensor, y: torch.Tensor, mode: str = "plastic") -> dict[str, float]:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        cfg = self.config
        y = y.long().to(x.device)
        _, h = self.encode(x)
        out = h @ self.w_core.T + h @ self.w_context.T
        pred = out.argmax(1)
        correct = pred == y
        acc_before = float(correct.float().mean())
        births = len(self.neurogenesis(x))
        if births:
            _, h = self.encode(x)
            out = h @ self.w_core.T + h @ self.w_context.T
        target = F.one_hot(y, self.num_classes).float()
        b = len(y)
        delta = (target - torch.softmax(out, dim=1)).T @ h / b
        ctx_lr = cfg.context_lr * (cfg.panic_gain if mode == "panic" else 1.0)
        core_lr = cfg.core_lr * (cfg.panic_core_scale if mode == "panic" else 1.0)
        self.w_context.add_(delta, alpha=ctx_lr).mul_(cfg.context_decay)
        brake = (self.importance * cfg.brake_gain).clamp(0.0, 1.0)
        self.w_core.add_(core_lr * delta * (1.0 - brake))
        if bool(correct.any()):
            self.importance.add_(target[correct].T @ h[correct], alpha=cfg.lock_rate / b)
        self.utility.mul_(cfg.utility_ema).add_((h != 0).float().mean(0), alpha=1 - cfg.utility_ema)
        self.steps += 1
        return {
            "acc_before": acc_before,
            "births": float(births),
            "active_fraction": float((h != 0).float().sum(1).mean()) / cfg.hidden_dim,
            "context_energy": self.context_energy(),
        }

    def end_phase(self, consolidate: bool) -> dict[str, float]:  # locking is continuous
        return {"locked_fraction": float(self.locked().float().mean())}

    # ---- inspection ---------------------------------------------------------------------------
    def context_energy(self) -> float:
        """Frobenius norm of the context weights."""
        return float(self.w_context.norm())

    def sparsity(self) -> float:
        return self.config.k / self.config.hidden_dim

    def step_stats(self) -> dict[str, float]:
        return {
            "context_energy": self.context_energy(),
            "core_norm": float(self.w_core.norm()),
            "locked_fraction": float(self.locked().float().mean()),
            "braked_fraction": float((self.importance * self.config.brake_gain >= 1.0).float().mean()),
            "births_total": float(self.births),
        }

    def core_snapshot(self) -> torch.Tensor:
        return self.w_core.clone()

    def core_drift(self, snapshot: torch.Tensor) -> float:
        den = float(snapshot.norm())
        return float((self.w_core - snapshot).norm()) / den if den > 0 else float("nan")
