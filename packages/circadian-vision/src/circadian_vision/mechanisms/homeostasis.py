"""Homeostatic norm control of incoming weights.

Rows of ``W_in`` (H, D) whose L2 norm ``n_j`` exceeds ``norm_max`` are scaled by
``1 - rate (1 - norm_max / n_j)`` (``rate = 1``: exactly onto ``norm_max``); other rows are unchanged.
"""

from __future__ import annotations

import dataclasses

from circadian_vision.mechanisms import _xp
from circadian_vision.mechanisms._xp import Array


@dataclasses.dataclass(frozen=True)
class HomeostasisConfig:
    enabled: bool = True
    norm_max: float = 3.0
    rate: float = 1.0

    def __post_init__(self) -> None:
        if self.norm_max <= 0 or not 0.0 <= self.rate <= 1.0:
            raise ValueError("homeostasis: need norm_max > 0 and rate in [0, 1]")


def row_norms(W: Array) -> Array:
    return _xp.sqrt(_xp.sum_axis(W * W, 1))


def norm_control(W: Array, norm_max: float, rate: float = 1.0) -> Array:
    """``W`` with over-large rows pulled toward ``norm_max`` (returns a new array)."""
    n = row_norms(W)
    ratio = _xp.clip(norm_max / (n + 1e-12), None, 1.0)
    factor = 1.0 - rate * (1.0 - ratio)
    return W * factor[:, None]
