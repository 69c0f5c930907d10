"""Shared pieces of the NumPy networks: activations, the BCE loss, initialisation, the base class.

Every network has one tanh hidden layer and sigmoid outputs (one per class) trained with binary
cross-entropy against one-hot targets; the prediction is the argmax. Layout: hidden units are rows
of ``W_in`` (H, D) / ``b_in`` (H,) and columns of ``W_out`` (C, H).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def bce_from_logits(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample BCE summed over outputs: ``sum_c softplus(z) - y z``  (B,)."""
    return (np.logaddexp(0.0, z) - y * z).sum(axis=1)


def one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    out = np.zeros((len(y), num_classes))
    out[np.arange(len(y)), y] = 1.0
    return out


def init_weights(rng: np.random.Generator, fan_out: int, fan_in: int, scale: float = 1.0) -> np.ndarray:
    return rng.normal(0.0, scale / np.sqrt(fan_in), size=(fan_out, fan_in))


class NumpyNet:
    """Base class: parameters, forward pass, evaluation, epochs of minibatch steps."""

    name = "net"

    def __init__(self, input_dim: int, num_classes: int, hidden: int, seed: int, init_scale: float = 1.0) -> None:
        if hidden < 1:
            raise ValueError(f"hidden width must be >= 1, got {hidden}")
        self.input_dim = int(input_dim)
        self.num_classes = int(num_classes)
        self.rng = np.random.default_rng(seed)
        self.W_in = init_weights(self.rng, hidden, input_dim, init_scale)
        self.b_in = np.zeros(hidden)
        self.W_out = init_weights(self.rng, num_classes, hidden, init_scale)
        self.b_out = np.zeros(num_classes)
        self.steps = 0
        self.events: list[dict[str, Any]] = []

    # ---- forward / evaluation ----------------------------------------------------------------
    @property
    def hidden_width(self) -> int:
        return int(self.W_in.shape[0])

    def hidden(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x @ self.W_in.T + self.b_in)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.hidden(x) @ self.W_out.T + self.b_out

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(x), axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float((self.predict(x) == y).mean()) if len(y) else float("nan")

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean (over samples) BCE of the feedforward prediction."""
        return float(bce_from_logits(self.logits(x), one_hot(y, self.num_classes)).mean())

    def param_count(self) -> int:
        return int(self.W_in.size + self.b_in.size + self.W_out.size + self.b_out.size)

    # ---- training --------------------------------------------------------------------------------
    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_epoch(self, x: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator) -> float:
        """One pass over ``(x, y)`` in shuffled minibatches; returns the mean step loss."""
        order = rng.permutation(len(y))
        losses = [self.train_step(x[order[i : i + batch_size]], y[order[i : i + batch_size]])
                  for i in range(0, len(y), batch_size)]
        return float(np.mean(losses))

    def state(self) -> dict[str, Any]:
        return {"W_in": self.W_in, "b_in": self.b_in, "W_out": self.W_out, "b_out": self.b_out}

    def stats(self) -> dict[str, float]:
        return {}
