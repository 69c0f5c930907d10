"""The predictive-coding baseline: iterative inference on the hidden state, local weight updates.

One hidden layer. For a batch (x, Y) with feedforward prediction ``mu = tanh(W_in x + b_in)`` and
free hidden state ``h``, the energy is

    E(h) = mean_b [ BCE(sigmoid(W_out h_b + b_out), Y_b) + 0.5 ||h_b - mu_b||^2 ]

(BCE summed over the outputs; the second term is the squared prediction error of the hidden
layer). Inference starts at ``h = mu`` and takes ``inference_steps`` gradient steps
``h <- h - eta (W_out^T (yhat - Y) + (h - mu))`` (each sample's own gradient). The weights then
learn locally from the settled state: the output layer from its own error ``yhat - Y`` and ``h``,
the hidden layer from its prediction error ``e = h - mu`` (``W_in += lr (e * (1 - mu^2)) x^T / B``):
no error is propagated back through a weight transpose during learning.

Several hidden layers (``trunk`` widths before the last layer), as the prototype's multi-layer
predictive coding network (``PredictiveCodingNetwork.train_epoch``,
OptimumAF/Circadian-Predictive-Coding@8793c49, src/core/predictive_coding.py): every layer l has a
prediction ``mu_l = tanh(W_l mu_{l-1} + b_l)`` computed feed-forward from the layer below's
*prediction* (``mu_0 = x``) and a free state ``s_l`` (starting at ``mu_l``); inference steps
``s_l <- s_l - eta (e_l + W_{l+1}^T e_{l+1})`` with ``e_l = s_l - mu_l`` for the lower layers and
``s_L <- s_L - eta (e_L + W_out^T (yhat - Y))`` for the last; each layer then learns from its own
error, ``W_l += lr (e_l * (1 - mu_l^2)) mu_{l-1}^T / B``. With ``trunk_rule: backprop`` (the
prototype's circadian network) only the last layer has a free state and the trunk learns by
backpropagating the last layer's prediction error ``0.5 ||s_L - mu_L||^2`` into it.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from circadian_vision.nets._common import NumpyNet, bce_from_logits, sigmoid

TRUNK_RULES = ("pc", "backprop")


@dataclasses.dataclass(frozen=True)
class PredictiveCodingConfig:
    hidden: int = 32
    lr: float = 0.1
    inference_steps: int = 20
    inference_lr: float = 0.1
    init_scale: float = 1.0
    init_std: float | None = None  # N(0, init_std^2) instead of the fan-in scaled init
    trunk: tuple[int, ...] = ()  # widths of the hidden layers before the last one
    trunk_rule: Literal["pc", "backprop"] = "pc"  # how the trunk learns (see the module docstring)
    binary: bool = False  # one sigmoid output on a two-class task (the prototype's head)

    def __post_init__(self) -> None:
        if self.trunk_rule not in TRUNK_RULES:
            raise ValueError(f"trunk_rule must be one of {', '.join(TRUNK_RULES)}, got {self.trunk_rule!r}")


@dataclasses.dataclass
class Settled:
    """A batch after inference: targets, every layer's prediction and state, the energy."""

    Y: np.ndarray
    mus: list[np.ndarray]  # [x, mu_1, ..., mu_L]: predictions (mu_0 = x)
    states: list[np.ndarray]  # [x, s_1, ..., s_L]: settled states (trunk states = mus under backprop)
    energy: float

    @property
    def mu(self) -> np.ndarray:
        return self.mus[-1]

    @property
    def h(self) -> np.ndarray:
        return self.states[-1]


class PredictiveCodingNet(NumpyNet):
    name = "predictive_coding"
    config_class = PredictiveCodingConfig

    def __init__(
        self, input_dim: int, num_classes: int, cfg: PredictiveCodingConfig | None = None, *, seed: int = 0
    ) -> None:
        self.cfg = cfg or PredictiveCodingConfig()
        super().__init__(input_dim, num_classes, self.cfg.hidden, seed, self.cfg.init_scale,
                         trunk=self.cfg.trunk, binary=self.cfg.binary, init_std=self.cfg.init_std)

    # ---- energy and inference --------------------------------------------------------------------
    def _layer_weights(self) -> list[np.ndarray]:
        return [*self.trunk_W, self.W_in]

    def energy(self, x: np.ndarray, Y: np.ndarray, h: np.ndarray | None = None) -> float:
        """``E(h)`` of the last layer for targets ``Y`` (``h`` defaults to the feedforward state)."""
        mu = self.hidden(x)
        h = mu if h is None else h
        z = h @ self.W_out.T + self.b_out
        return float((bce_from_logits(z, Y) + 0.5 * ((h - mu) ** 2).sum(axis=1)).mean())

    def infer(self, x: np.ndarray, Y: np.ndarray, steps: int | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Settle the free states: returns ``(mus, states)``, each ``[x, layer 1, ..., layer L]``."""
        mus = [*self.trunk_forward(x)]
        mus.append(np.tanh(mus[-1] @ self.W_in.T + self.b_in))
        free = range(1, len(mus)) if self.cfg.trunk_rule == "pc" else range(len(mus) - 1, len(mus))
        states = [m.copy() if i in free else m for i, m in enumerate(mus)]
        weights = self._layer_weights()
        eta = self.cfg.inference_lr
        for _ in range(self.cfg.inference_steps if steps is None else steps):
            yhat = sigmoid(states[-1] @ self.W_out.T + self.b_out)
            errors = [s - m for s, m in zip(states, mus)]
            grads = {len(mus) - 1: errors[-1] + (yhat - Y) @ self.W_out}
            for layer in free:
                if layer < len(mus) - 1:
                    grads[layer] = errors[layer] + errors[layer + 1] @ weights[layer]
            for layer, g in grads.items():
                states[layer] -= eta * g
        return mus, states

    def settle(self, x: np.ndarray, y: np.ndarray) -> Settled:
        """Inference on a batch; the energy sums the output BCE and every free layer's squared error."""
        Y = self.targets(y)
        mus, states = self.infer(x, Y)
        z = states[-1] @ self.W_out.T + self.b_out
        err = sum(((s - m) ** 2).sum(axis=1) for s, m in zip(states[1:], mus[1:]))
        energy = float((bce_from_logits(z, Y) + 0.5 * err).mean())
        return Settled(Y, mus, states, energy)

    def local_updates(self, s: Settled) -> dict[str, list[np.ndarray]]:
        """Descent directions (to be scaled by the learning rate): ``{"trunk_W": [...], "trunk_b": [...],
        "W_in", "b_in", "W_out", "b_out"}`` (the last four as one-element lists)."""
        n = len(s.Y)
        d_out = sigmoid(s.h @ self.W_out.T + self.b_out) - s.Y
        deltas = [(st - m) * (1.0 - m * m) for st, m in zip(s.states[1:], s.mus[1:])]
        if self.cfg.trunk_rule == "backprop":  # the last layer's prediction error, backpropagated
            d = deltas[-1] @ self.W_in
            for layer in range(len(self.trunk_W) - 1, -1, -1):
                deltas[layer] = d * (1.0 - s.mus[layer + 1] ** 2)
                d = deltas[layer] @ self.trunk_W[layer]
        dW = [dl.T @ s.mus[i] / n for i, dl in enumerate(deltas)]
        db = [dl.mean(0) for dl in deltas]
        return {"trunk_W": dW[:-1], "trunk_b": db[:-1], "W_in": [dW[-1]], "b_in": [db[-1]],
                "W_out": [-(d_out.T @ s.h) / n], "b_out": [-d_out.mean(0)]}

    def apply_updates(self, upd: dict[str, list[np.ndarray]], lr: float) -> None:
        for name in ("trunk_W", "trunk_b"):
            for p, d in zip(getattr(self, name), upd[name]):
                p += lr * d
        for name in ("W_in", "b_in", "W_out", "b_out"):
            getattr(self, name).__iadd__(lr * upd[name][0])

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        s = self.settle(x, y)
        self.apply_updates(self.local_updates(s), self.cfg.lr)
        self.steps += 1
        return s.energy
