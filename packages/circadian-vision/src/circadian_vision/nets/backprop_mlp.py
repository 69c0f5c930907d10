"""The backprop baseline: a tanh MLP trained by SGD (with momentum) on BCE, errors propagated back
through every layer (the trunk, if any, and the last hidden layer)."""

from __future__ import annotations

import dataclasses

import numpy as np

from circadian_vision.nets._common import NumpyNet, sigmoid


@dataclasses.dataclass(frozen=True)
class BackpropConfig:
    hidden: int = 32
    lr: float = 0.1
    momentum: float = 0.0
    init_scale: float = 1.0
    init_std: float | None = None  # N(0, init_std^2) instead of the fan-in scaled init
    trunk: tuple[int, ...] = ()  # widths of the hidden layers before the last one
    binary: bool = False  # one sigmoid output on a two-class task (the prototype's head)


class BackpropMLP(NumpyNet):
    name = "backprop"
    config_class = BackpropConfig

    def __init__(self, input_dim: int, num_classes: int, cfg: BackpropConfig | None = None, *, seed: int = 0) -> None:
        self.cfg = cfg or BackpropConfig()
        super().__init__(input_dim, num_classes, self.cfg.hidden, seed, self.cfg.init_scale,
                         trunk=self.cfg.trunk, binary=self.cfg.binary, init_std=self.cfg.init_std)
        self._vel = [np.zeros_like(p) for p in self._params()]

    def _params(self) -> list[np.ndarray]:
        """Every parameter in a fixed order: trunk (W, b) pairs, then W_in, b_in, W_out, b_out."""
        trunk = [p for pair in zip(self.trunk_W, self.trunk_b) for p in pair]
        return [*trunk, self.W_in, self.b_in, self.W_out, self.b_out]

    def gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Mean BCE over the batch and its gradients, in :meth:`_params` order."""
        Y = self.targets(y)
        acts = self.trunk_forward(x)
        h = np.tanh(acts[-1] @ self.W_in.T + self.b_in)
        z = h @ self.W_out.T + self.b_out
        loss = float((np.logaddexp(0.0, z) - Y * z).sum(axis=1).mean())
        d_out = (sigmoid(z) - Y) / len(y)
        d_hid = (d_out @ self.W_out) * (1.0 - h * h)
        grads = [d_hid.T @ acts[-1], d_hid.sum(0), d_out.T @ h, d_out.sum(0)]
        d = d_hid @ self.W_in
        trunk: list[np.ndarray] = []
        for layer in range(len(self.trunk_W) - 1, -1, -1):
            a = acts[layer + 1]
            d_l = d * (1.0 - a * a)
            trunk = [d_l.T @ acts[layer], d_l.sum(0), *trunk]
            d = d_l @ self.trunk_W[layer]
        return loss, [*trunk, *grads]

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        loss, grads = self.gradients(x, y)
        for i, (p, g) in enumerate(zip(self._params(), grads)):
            self._vel[i] = self.cfg.momentum * self._vel[i] - self.cfg.lr * g
            p += self._vel[i]
        self.steps += 1
        return loss
