"""PredictiveCodingHead: one tanh hidden layer, iterative inference on the hidden state, local updates.

Model (per sample; ``x`` features, ``y`` one-hot label)::

    mu = tanh(W1 x + b1)                  the hidden layer's prediction from below
    p  = softmax(W2 h + b2)               the output, from the hidden *state* h
    E(h) = CE(p, y) + 0.5 * ||h - mu||^2  energy

Inference starts at ``h = mu`` and takes ``inference_steps`` gradient steps
``h <- h - inference_lr * (W2^T (p - y) + (h - mu))``. Weights then move down the energy with
purely local terms (each layer sees only its own input and its own prediction error)::

    dW2 = (p - y) h^T,   db2 = p - y
    dW1 = -((h - mu) * (1 - mu^2)) x^T,   db1 = -(h - mu) * (1 - mu^2)

averaged over the minibatch, applied as ``W <- W - lr * dW``. At test time there is no label:
``h = mu`` and the prediction is the feed-forward pass ``W2 tanh(W1 x + b1) + b2``.
No autograd is used: every step is a handful of matmuls.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from circadian_vision.heads.base import Head, _init_normal, one_hot


@dataclasses.dataclass
class PredictiveCodingConfig:
    hidden: int = 64
    lr: float = 0.05
    inference_steps: int = 10
    inference_lr: float = 0.1
    init_scale: float = 1.0  # weights ~ N(0, (init_scale / sqrt(fan_in))^2), as the NumPy networks


@dataclasses.dataclass
class InferenceResult:
    mu: torch.Tensor  # (B, H) prediction of the hidden layer
    h: torch.Tensor  # (B, H) relaxed hidden state
    p: torch.Tensor  # (B, C) softmax output at h
    target: torch.Tensor  # (B, C) one-hot labels
    energy: torch.Tensor  # 0-d: mean over the batch of CE(p, y) + 0.5 ||h - mu||^2


class PredictiveCodingHead(Head):
    name = "predictive_coding"

    def __init__(
        self, in_dim: int, num_classes: int, config: PredictiveCodingConfig | None = None, *, seed: int = 0
    ) -> None:
        super().__init__(in_dim, num_classes)
        self.cfg = cfg = config or PredictiveCodingConfig()
        gen = torch.Generator().manual_seed(seed)
        h = cfg.hidden
        self.W1 = nn.Parameter(_init_normal((h, in_dim), in_dim, cfg.init_scale, gen), requires_grad=False)
        self.b1 = nn.Parameter(torch.zeros(h), requires_grad=False)
        self.W2 = nn.Parameter(_init_normal((num_classes, h), h, cfg.init_scale, gen), requires_grad=False)
        self.b2 = nn.Parameter(torch.zeros(num_classes), requires_grad=False)

    @property
    def hidden_width(self) -> int:
        return int(self.W1.shape[0])

    # ---- forward -----------------------------------------------------------------------------
    def hidden_prediction(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(torch.addmm(self.b1, x, self.W1.t()))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.b2, self.hidden_prediction(x), self.W2.t())

    # ---- learning ----------------------------------------------------------------------------
    @torch.no_grad()
    def infer(self, x: torch.Tensor, y: torch.Tensor) -> InferenceResult:
        """Relax the hidden state toward lower energy for ``inference_steps`` steps."""
        mu = self.hidden_prediction(x)
        target = one_hot(y, self.num_classes, mu.dtype)
        h = mu.clone()
        eta = self.cfg.inference_lr
        for _ in range(self.cfg.inference_steps):
            p = torch.softmax(torch.addmm(self.b2, h, self.W2.t()), dim=1)
            grad = torch.addmm(h - mu, p - target, self.W2)  # W2^T (p - y) + (h - mu), batched
            h.sub_(grad, alpha=eta)
        z = torch.addmm(self.b2, h, self.W2.t())
        p = torch.softmax(z, dim=1)
        ce = nn.functional.cross_entropy(z, y)
        energy = ce + 0.5 * (h - mu).pow(2).sum(1).mean()
        return InferenceResult(mu=mu, h=h, p=p, target=target, energy=energy)

    @staticmethod
    def local_gradients(x: torch.Tensor, r: InferenceResult) -> dict[str, torch.Tensor]:
        """The local weight gradients of the energy, averaged over the batch."""
        n = x.shape[0]
        e_out = (r.p - r.target) / n  # output prediction error
        e_hid = (r.h - r.mu) * (1.0 - r.mu * r.mu) / n  # hidden prediction error through tanh'
        return {
            "W2": e_out.t() @ r.h,
            "b2": e_out.sum(0),
            "W1": -(e_hid.t() @ x),
            "b1": -e_hid.sum(0),
        }

    @torch.no_grad()
    def apply_gradients(self, grads: dict[str, torch.Tensor], lr: float | torch.Tensor) -> None:
        """``W <- W - lr * dW``; ``lr`` may be a 0-d tensor (no device sync)."""
        for name, g in grads.items():
            if isinstance(lr, torch.Tensor):
                getattr(self, name).sub_(g * lr)
            else:
                getattr(self, name).sub_(g, alpha=lr)

    @torch.no_grad()
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r = self.infer(x, y)
        self.apply_gradients(self.local_gradients(x, r), self.cfg.lr)
        return r.energy
