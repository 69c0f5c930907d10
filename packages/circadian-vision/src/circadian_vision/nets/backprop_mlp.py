"""The backprop baseline: a one-hidden-layer tanh MLP trained by SGD (with momentum) on BCE."""

from __future__ import annotations

import dataclasses

import numpy as np

from circadian_vision.nets._common import NumpyNet, one_hot, sigmoid


@dataclasses.dataclass(frozen=True)
class BackpropConfig:
    hidden: int = 32
    lr: float = 0.1
    momentum: float = 0.0
    init_scale: float = 1.0


class BackpropMLP(NumpyNet):
    name = "backprop"
    config_class = BackpropConfig

    def __init__(self, input_dim: int, num_classes: int, cfg: BackpropConfig | None = None, *, seed: int = 0) -> None:
        self.cfg = cfg or BackpropConfig()
        super().__init__(input_dim, num_classes, self.cfg.hidden, seed, self.cfg.init_scale)
        self._vel = [np.zeros_like(p) for p in (self.W_in, self.b_in, self.W_out, self.b_out)]

    def gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Mean BCE over the batch and its gradients for (W_in, b_in, W_out, b_out)."""
        Y = one_hot(y, self.num_classes)
        h = self.hidden(x)
        z = h @ self.W_out.T + self.b_out
        loss = float((np.logaddexp(0.0, z) - Y * z).sum(axis=1).mean())
        d_out = (sigmoid(z) - Y) / len(y)
        d_hid = (d_out @ self.W_out) * (1.0 - h * h)
        return loss, [d_hid.T @ x, d_hid.sum(0), d_out.T @ h, d_out.sum(0)]

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        loss, grads = self.gradients(x, y)
        for i, (p, g) in enumerate(zip((self.W_in, self.b_in, self.W_out, self.b_out), grads)):
            self._vel[i] = self.cfg.momentum * self._vel[i] - self.cfg.lr * g
            p += self._vel[i]
        self.steps += 1
        return loss
