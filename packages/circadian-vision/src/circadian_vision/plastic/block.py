"""NeuromodulatedBlock: a sparse, locally learning residual layer with protected (mature) neurons.

Forward pass, for a batch ``x`` of shape ``(B, d)``::

    x_n   = x / ||x||                              L2-normalized input
    pre   = x_n @ W_enc.T                          (B, H) cosine of the input with each neuron's prototype
    code  = k-WTA(pre)                             exactly k winners per row, softmax(pre / tau) over them
    y     = x_n + gate * (code @ W_dec.T)          gated residual (LayerScale-style gate per feature)

Nothing in a block is trained by backpropagation. :meth:`learn` is a local, reward-modulated
Hebbian rule: each winning neuron's encoder row moves toward the (code-weighted) mean of the inputs
it won, with the sign and size of the per-sample reward (toward on reward, away on punishment),
and its decoder column moves toward the inputs it won on *rewarded* samples only, so the residual
pulls a representation toward regions that were classified correctly. Per neuron the block keeps

* ``freq``: an EMA of how often the neuron wins (activation frequency);
* ``utility``: an EMA of how often it wins on a rewarded sample;
* ``mature``: the maturity mask. :meth:`consolidate` marks high-utility neurons mature; in
  ``plastic`` mode mature neurons never move; in ``panic`` mode every rate is multiplied by
  ``panic_gain`` and mature neurons move at ``panic_mature_scale`` of that rate (0: never).

:meth:`neurogenesis` recycles the lowest-utility *non-mature* neurons: their prototypes are reset
to the inputs the block currently represents worst (lowest best-match cosine).
A frozen block (``frozen = True``) still computes its forward pass but never learns or grows.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional as F

MODES = ("plastic", "panic")


@dataclasses.dataclass
class BlockConfig:
    """Hyper-parameters of one :class:`NeuromodulatedBlock`."""

    hidden_dim: int = 1024
    k: int = 32  # winners per input (exactly k units are active)
    tau: float = 0.1  # softmax temperature over the k winners' cosines
    lr: float = 0.2  # encoder/decoder rate in plastic mode
    panic_gain: float = 3.0  # rate multiplier in panic mode
    panic_mature_scale: float = 0.0  # fraction of the panic rate mature neurons get (0: fully protected)
    gate_init: float = 0.3  # residual gate (per feature)
    ema: float = 0.98  # decay of the frequency and utility EMAs
    consolidate_ratio: float = 1.0  # mature if utility >= ratio * k / hidden_dim (the uniform share)
    max_mature_fraction: float = 0.6  # never more than this fraction of neurons mature
    recycle_ratio: float = 0.25  # neurogenesis candidates: utility < ratio * k / hidden_dim

    def validate(self, in_dim: int) -> None:
        if in_dim < 1 or self.hidden_dim < 1:
            raise ValueError(f"block needs in_dim >= 1 and hidden_dim >= 1, got {in_dim}, {self.hidden_dim}")
        if not 1 <= self.k <= self.hidden_dim:
            raise ValueError(f"block k must be in 1..hidden_dim ({self.hidden_dim}), got {self.k}")
        if self.tau <= 0:
            raise ValueError(f"block tau must be > 0, got {self.tau}")
        if not 0.0 <= self.max_mature_fraction <= 1.0:
            raise ValueError(f"max_mature_fraction must be in [0, 1], got {self.max_mature_fraction}")


class NeuromodulatedBlock(nn.Module):
    """One pluggable plastic layer (see the module docstring). Dimensions: ``in_dim -> in_dim``."""

    def __init__(
        self,
        in_dim: int,
        config: BlockConfig | None = None,
        *,
        generator: torch.Generator | None = None,
        **overrides: float,
    ) -> None:
        super().__init__()
        cfg = dataclasses.replace(config or BlockConfig(), **overrides)
        cfg.validate(in_dim)
        self.config = cfg
        self.in_dim = int(in_dim)
        self.hidden_dim = cfg.hidden_dim
        self.k = cfg.k
        self.frozen = False
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        enc = F.normalize(torch.randn(cfg.hidden_dim, in_dim, generator=gen), dim=1)
        dec = torch.randn(in_dim, cfg.hidden_dim, generator=gen) * (0.01 / in_dim**0.5)
        uniform = cfg.k / cfg.hidden_dim
        self.register_buffer("w_enc", enc)
        self.register_buffer("w_dec", dec)
        self.register_buffer("gate", torch.full((in_dim,), float(cfg.gate_init)))
        self.register_buffer("freq", torch.full((cfg.hidden_dim,), uniform))
        self.register_buffer("utility", torch.full((cfg.hidden_dim,), uniform))
        self.register_buffer("mature", torch.zeros(cfg.hidden_dim, dtype=torch.bool))
        self.births = 0  # neurons recycled by neurogenesis so far
        self.updates = 0

    # ---- forward ------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_n, pre, code)``: normalized input, dense cosines (B, H), sparse code (B, H)."""
        x_n = F.normalize(x.float(), dim=1)
        pre = x_n @ self.w_enc.T
        vals, idx = pre.topk(self.k, dim=1)
        weights = torch.softmax(vals / self.config.tau, dim=1)
        code = torch.zeros_like(pre).scatter_(1, idx, weights)
        return x_n, pre, code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_n, _, code = self.encode(x)
        return x_n + self.gate * (code @ self.w_dec.T)

    # ---- learning -----------------------------------------------------------------------------
    def rates(self, mode: str) -> torch.Tensor:
        """Per-neuron learning rate for ``mode`` (mature neurons: 0 in plastic mode)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        cfg = self.config
        if mode == "plastic":
            return torch.where(self.mature, 0.0, cfg.lr)
        base = cfg.lr * cfg.panic_gain
        return torch.where(self.mature, base * cfg.panic_mature_scale, base)

    @torch.no_grad()
    def learn(self, x: torch.Tensor, reward: torch.Tensor, mode: str = "plastic") -> dict[str, float]:
        """One local update from inputs ``x`` (B, d) and per-sample rewards ``reward`` (B,).

        Returns the batch's statistics (active fraction, mean reward, neurons moved).
        """
        x_n, _, code = self.encode(x)
        active = code > 0
        reward = reward.float().to(x_n.device)
        cfg = self.config
        # EMAs are bookkeeping and run even when the block is frozen: they say what it is used for.
        self.freq.mul_(cfg.ema).add_(active.float().mean(0), alpha=1 - cfg.ema)
        rewarded = (active & (reward > 0)[:, None]).float().mean(0)
        self.utility.mul_(cfg.ema).add_(rewarded, alpha=1 - cfg.ema)
        stats = {"active_fraction": float(active.float().sum(1).mean()) / self.hidden_dim}
        if self.frozen:
            stats["moved"] = 0.0
            return stats
        rate = self.rates(mode)
        # encoder: toward (reward > 0) or away from (reward < 0) the inputs each neuron won
        m = code * reward[:, None]  # (B, H)
        won = code.sum(0).clamp_min(1e-8)  # (H,)
        target = m.T @ x_n  # (H, d)
        delta = (target - m.sum(0)[:, None] * self.w_enc) / won[:, None]
        moving = rate > 0
        self.w_enc[moving] = F.normalize(self.w_enc[moving] + rate[moving, None] * delta[moving], dim=1)
        # decoder: toward the inputs each neuron won on rewarded samples
        pos = code * reward.clamp_min(0)[:, None]
        won_pos = pos.sum(0)
        has = won_pos > 0
        mean_pos = (pos.T @ x_n) / won_pos.clamp_min(1e-8)[:, None]  # (H, d)
        cols = moving & has
        self.w_dec[:, cols] += rate[cols] * (mean_pos[cols].T - self.w_dec[:, cols])
        self.updates += 1
        stats["moved"] = float(((rate > 0) & (won > 1e-8)).sum())
        return stats

    @torch.no_grad()
    def consolidate(self) -> int:
        """Mark high-utility neurons mature (capped at ``max_mature_fraction``); returns how many were added."""
        if self.frozen:
            return 0
        cfg = self.config
        threshold = cfg.consolidate_ratio * self.k / self.hidden_dim
        budget = int(cfg.max_mature_fraction * self.hidden_dim) - int(self.mature.sum())
        if budget <= 0:
            return 0
        candidates = (~self.mature) & (self.utility >= threshold)
        n = min(int(candidates.sum()), budget)
        if n == 0:
            return 0
        score = torch.where(candidates, self.utility, torch.full_like(self.utility, -1.0))
        chosen = score.topk(n).indices
        self.mature[chosen] = True
        return n

    @torch.no_grad()
    def neurogenesis(self, x: torch.Tensor, max_new: int) -> torch.Tensor:
        """Recycle up to ``max_new`` non-mature, low-utility neurons onto the worst-represented inputs.

        Candidates are non-mature neurons with ``utility < recycle_ratio * k / hidden_dim``; the
        lowest-utility ones are replaced. Each gets the prototype of one input of ``x`` (those with
        the lowest best-match cosine first), a decoder column pointing at it, and fresh EMAs.
        Returns the indices of the recycled neurons.
        """
        if self.frozen or max_new <= 0 or len(x) == 0:
            return torch.empty(0, dtype=torch.long)
        cfg = self.config
        uniform = self.k / self.hidden_dim
        candidates = (~self.mature) & (self.utility < cfg.recycle_ratio * uniform)
        n = min(int(candidates.sum()), int(max_new), len(x))
        if n == 0:
            return torch.empty(0, dtype=torch.long)
        score = torch.where(candidates, self.utility, torch.full_like(self.utility, float("inf")))
        victims = torch.sort(score, stable=True).indices[:n]
        x_n, pre, _ = self.encode(x)
        familiarity = pre.max(1).values
        seeds = torch.sort(familiarity, stable=True).indices[:n]
        self.w_enc[victims] = x_n[seeds]
        self.w_dec[:, victims] = x_n[seeds].T
        self.freq[victims] = uniform
        self.utility[victims] = cfg.recycle_ratio * uniform  # a grace period: not recycled again at once
        self.births += n
        return victims

    # ---- inspection ---------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        uniform = self.k / self.hidden_dim
        return {
            "active_fraction": uniform,
            "mature_fraction": float(self.mature.float().mean()),
            "dead_fraction": float((self.freq < 0.01 * uniform).float().mean()),
            "mean_utility": float(self.utility.mean()),
            "births": float(self.births),
            "frozen": float(self.frozen),
        }

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, hidden_dim={self.hidden_dim}, k={self.k}, "
            f"mature={int(self.mature.sum())}, frozen={self.frozen}"
        )
