"""The predictive-coding baseline: iterative inference on the hidden state, local weight updates.

For a batch (x, Y) with feedforward prediction ``mu = tanh(W_in x + b_in)`` and free hidden state
``h``, the energy is

    E(h) = mean_b [ BCE(sigmoid(W_out h_b + b_out), Y_b) + 0.5 ||h_b - mu_b||^2 ]

(BCE summed over the outputs; the second term is the squared prediction error of the hidden
layer). Inference starts at ``h = mu`` and takes ``inference_steps`` gradient steps
``h <- h - eta (W_out^T (yhat - Y) + (h - mu))`` (each sample's own gradient). The weights then
learn locally from the settled state: the output layer from its own error ``yhat - Y`` and ``h``,
the hidden layer from its prediction error ``e = h - mu`` (``W_in += lr (e * (1 - mu^2)) x^T / B``):
no error is propagated back through a weight transpose during learning.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from circadian_vision.nets._common import NumpyNet, bce_from_logits, one_hot, sigmoid


@dataclasses.dataclass(frozen=True)
class PredictiveCodingConfig:
    hidden: int = 32
    lr: float = 0.1
    inference_steps: int = 20
    inference_lr: float = 0.1
    init_scale: float = 1.0


class PredictiveCodingNet(NumpyNet):
    name = "predictive_coding"
    config_class = PredictiveCodingConfig

    def __init__(
        self, input_dim: int, num_classes: int, cfg: PredictiveCodingConfig | None = None, *, seed: int = 0
    ) -> None:
        self.cfg = cfg or PredictiveCodingConfig()
        super().__init__(input_dim, num_classes, self.cfg.hidden, seed, self.cfg.init_scale)

    # ---- energy and inference --------------------------------------------------------------------
    def energy(self, x: np.ndarray, Y: np.ndarray, h: np.ndarray | None = None) -> float:
        """``E(h)`` for one-hot targets ``Y`` (``h`` defaults to the feedforward state)."""
        mu = self.hidden(x)
        h = mu if h is None else h
        z = h @ self.W_out.T + self.b_out
        return float((bce_from_logits(z, Y) + 0.5 * ((h - mu) ** 2).sum(axis=1)).mean())

    def infer(self, x: np.ndarray, Y: np.ndarray, steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Settle the hidden state: returns ``(mu, h)``."""
        mu = self.hidden(x)
        h = mu.copy()
        eta = self.cfg.inference_lr
        for _ in range(self.cfg.inference_steps if steps is None else steps):
            yhat = sigmoid(h @ self.W_out.T + self.b_out)
            h -= eta * ((yhat - Y) @ self.W_out + (h - mu))
        return mu, h

    def local_updates(self, x: np.ndarray, Y: np.ndarray, mu: np.ndarray, h: np.ndarray) -> list[np.ndarray]:
        """Descent directions (to be scaled by the learning rate) for (W_in, b_in, W_out, b_out)."""
        n = len(x)
        d_out = sigmoid(h @ self.W_out.T + self.b_out) - Y
        delta = (h - mu) * (1.0 - mu * mu)
        return [delta.T @ x / n, delta.mean(0), -(d_out.T @ h) / n, -d_out.mean(0)]

    def settle(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Inference on a batch: ``(Y, mu, h, energy at h)``."""
        Y = one_hot(y, self.num_classes)
        mu, h = self.infer(x, Y)
        z = h @ self.W_out.T + self.b_out
        energy = float((bce_from_logits(z, Y) + 0.5 * ((h - mu) ** 2).sum(axis=1)).mean())
        return Y, mu, h, energy

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        Y, mu, h, energy = self.settle(x, y)
        lr = self.cfg.lr
        for p, d in zip((self.W_in, self.b_in, self.W_out, self.b_out), self.local_updates(x, Y, mu, h)):
            p += lr * d
        self.steps += 1
        return energy
