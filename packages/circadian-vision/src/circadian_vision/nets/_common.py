"""Shared pieces of the NumPy networks: activations, the BCE loss, initialisation, the base class.

Every network has tanh hidden layers and sigmoid outputs trained with binary cross-entropy: one
output per class against one-hot targets (prediction: the argmax), or, with ``binary`` on a
two-class task, a single output against the label itself (prediction: output > 1/2), the
prototype's head. The last hidden layer is the *adaptive* one (the circadian network splits and
prunes it): its units are rows of ``W_in`` (H, D') / ``b_in`` (H,) and columns of ``W_out`` (O, H).
Optional hidden layers before it (``trunk``, widths ``trunk[0], trunk[1], ...``) map the input
``x`` (D) to the adaptive layer's input (D'); layer l is ``a_l = tanh(W_l a_{l-1} + b_l)``.

Initialisation: ``N(0, (init_scale / sqrt(fan_in))^2)``, or ``N(0, init_std^2)`` when ``init_std``
is set (the prototype's ``N(0, 0.5^2)``); trunk layers first, then ``W_in``, then ``W_out``.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def init_weights(
    rng: np.random.Generator, fan_out: int, fan_in: int, scale: float = 1.0, std: float | None = None
) -> np.ndarray:
    sd = std if std is not None else scale / np.sqrt(fan_in)
    return rng.normal(0.0, sd, size=(fan_out, fan_in))


class NumpyNet:
    """Base class: parameters, forward pass, evaluation, epochs of minibatch steps."""

    name = "net"

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        hidden: int,
        seed: int,
        init_scale: float = 1.0,
        *,
        trunk: Sequence[int] = (),
        binary: bool = False,
        init_std: float | None = None,
    ) -> None:
        if hidden < 1 or any(w < 1 for w in trunk):
            raise ValueError(f"hidden widths must be >= 1, got trunk {list(trunk)} and hidden {hidden}")
        if binary and num_classes != 2:
            raise ValueError(f"binary: one sigmoid output needs a two-class task, got {num_classes} classes")
        self.input_dim = int(input_dim)
        self.num_classes = int(num_classes)
        self.binary = bool(binary)
        self.out_dim = 1 if binary else self.num_classes
        self.rng = np.random.default_rng(seed)
        self.trunk_W: list[np.ndarray] = []
        self.trunk_b: list[np.ndarray] = []
        fan_in = self.input_dim
        for width in trunk:
            self.trunk_W.append(init_weights(self.rng, width, fan_in, init_scale, init_std))
            self.trunk_b.append(np.zeros(width))
            fan_in = width
        self.W_in = init_weights(self.rng, hidden, fan_in, init_scale, init_std)
        self.b_in = np.zeros(hidden)
        self.W_out = init_weights(self.rng, self.out_dim, hidden, init_scale, init_std)
        self.b_out = np.zeros(self.out_dim)
        self.steps = 0
        self.events: list[dict[str, Any]] = []

    # ---- forward / evaluation ----------------------------------------------------------------
    @property
    def hidden_width(self) -> int:
        return int(self.W_in.shape[0])

    def trunk_forward(self, x: np.ndarray) -> list[np.ndarray]:
        """``[x, a_1, ..., a_L]``: the input and every trunk layer's activation."""
        acts = [x]
        for W, b in zip(self.trunk_W, self.trunk_b):
            acts.append(np.tanh(acts[-1] @ W.T + b))
        return acts

    def hidden(self, x: np.ndarray) -> np.ndarray:
        """The adaptive layer's feed-forward activation."""
        return np.tanh(self.trunk_forward(x)[-1] @ self.W_in.T + self.b_in)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.hidden(x) @ self.W_out.T + self.b_out

    def targets(self, y: np.ndarray) -> np.ndarray:
        """What the outputs are trained toward: one-hot rows, or the label column when ``binary``."""
        y = np.asarray(y)
        return y.astype(np.float64)[:, None] if self.binary else one_hot(y, self.num_classes)

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        return (z[:, 0] > 0).astype(np.int64) if self.binary else np.argmax(z, axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float((self.predict(x) == y).mean()) if len(y) else float("nan")

    def sample_loss(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-sample BCE (summed over outputs) of the feed-forward prediction."""
        return bce_from_logits(self.logits(x), self.targets(y))

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean (over samples) BCE of the feedforward prediction."""
        return float(self.sample_loss(x, y).mean())

    def param_count(self) -> int:
        trunk = sum(W.size + b.size for W, b in zip(self.trunk_W, self.trunk_b))
        return int(trunk + self.W_in.size + self.b_in.size + self.W_out.size + self.b_out.size)

    # ---- training --------------------------------------------------------------------------------
    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_epoch(self, x: np.ndarray, y: np.ndarray, batch_size: int | None, rng: np.random.Generator) -> float:
        """One pass over ``(x, y)`` in shuffled minibatches; returns the mean step loss.

        ``batch_size`` None (or 0): one full-batch step on the rows in their given order (the
        prototype's epochs).
        """
        if not batch_size:
            return float(self.train_step(x, y))
        order = rng.permutation(len(y))
        losses = [self.train_step(x[order[i : i + batch_size]], y[order[i : i + batch_size]])
                  for i in range(0, len(y), batch_size)]
        return float(np.mean(losses))

    def state(self) -> dict[str, Any]:
        return {"W_in": self.W_in, "b_in": self.b_in, "W_out": self.W_out, "b_out": self.b_out,
                "trunk_W": list(self.trunk_W), "trunk_b": list(self.trunk_b)}

    def stats(self) -> dict[str, float]:
        return {}
