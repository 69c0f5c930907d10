"""Prioritized, class-balanced replay during sleep.

Sampling probability of stored example i with label y_i and priority q_i (its last loss)::

    P(i) = q_i^alpha / (K * sum_{k: y_k = y_i} q_k^alpha)

where K is the number of classes present: every class gets the same total probability 1/K, and
within a class examples are drawn in proportion to their priority.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from circadian_vision.mechanisms import _xp
from circadian_vision.mechanisms._xp import Array


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    enabled: bool = True
    capacity: int = 1024
    batch_size: int = 32
    alpha: float = 1.0
    lr_scale: float = 0.5  # replay updates use this fraction of the wake learning rate

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.batch_size < 1 or self.alpha < 0:
            raise ValueError("replay: need capacity >= 1, batch_size >= 1, alpha >= 0")


def replay_weights(labels: Array, priority: Array, num_classes: int, alpha: float = 1.0, eps: float = 1e-6) -> Array:
    """Sampling probabilities (sum 1): class-balanced, prioritized within each class."""
    q = _xp.clip(priority, eps, None) ** alpha
    totals = _xp.class_sums(labels, q, num_classes)
    present = float((totals > 0).sum())
    return q / (totals[labels] * present)


class ReplayBuffer:
    """A NumPy ring buffer of (x, label, priority)."""

    def __init__(self, capacity: int, dim: int, dtype: Any = np.float64) -> None:
        self.capacity = int(capacity)
        self.x = np.zeros((self.capacity, dim), dtype=dtype)
        self.y = np.zeros(self.capacity, dtype=np.int64)
        self.priority = np.zeros(self.capacity, dtype=np.float64)
        self.size = 0
        self.pos = 0

    def __len__(self) -> int:
        return self.size

    def add(self, x: np.ndarray, y: np.ndarray, priority: np.ndarray) -> None:
        """Append rows (the oldest are overwritten once full)."""
        n = len(y)
        skip = max(0, n - self.capacity)  # rows that would be overwritten within this call
        slots = (self.pos + skip + np.arange(n - skip)) % self.capacity
        self.x[slots], self.y[slots], self.priority[slots] = x[skip:], y[skip:], priority[skip:]
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, rng: np.random.Generator, n: int, num_classes: int, alpha: float = 1.0) -> np.ndarray:
        """Indices of ``n`` examples drawn (with replacement) by :func:`replay_weights`."""
        if self.size == 0:
            raise ValueError("replay buffer is empty")
        p = replay_weights(self.y[: self.size], self.priority[: self.size], num_classes, alpha)
        return rng.choice(self.size, size=n, replace=True, p=p / p.sum())

    def update(self, idx: np.ndarray, priority: np.ndarray) -> None:
        self.priority[idx] = priority
