"""Plasticity gating: heavily used (high-chemical) units learn less.

``p_j = clip(exp(-s_j c_j), p_min, 1)`` multiplies every update of unit j's incoming weights (the
rows of ``W_in`` (H, D) and ``b_in``; optionally its outgoing column of ``W_out`` (C, H)).

The sensitivity ``s`` is a constant, or adaptive from importance and age::

    s_j = s * (1 + g_imp * I_j / mean(I) + g_age * a_j / (a_j + a_0))

with importance ``I_j = ||W_out[:, j]|| * mean_b |h_bj|`` (how much the output relies on unit j)
and age ``a_j`` in wake steps: important and old units are protected more.
"""

from __future__ import annotations

import dataclasses

from circadian_vision.mechanisms import _xp
from circadian_vision.mechanisms._xp import Array


@dataclasses.dataclass(frozen=True)
class GatingConfig:
    enabled: bool = True
    sensitivity: float = 1.0  # s
    p_min: float = 0.2
    adaptive: bool = True  # sensitivity from importance and age
    importance_gain: float = 0.5  # g_imp
    age_gain: float = 0.5  # g_age
    age_scale: float = 200.0  # a_0 (wake steps)
    gate_output: bool = False  # also gate the unit's outgoing column of W_out

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_min <= 1.0:
            raise ValueError(f"gating.p_min must be in [0, 1], got {self.p_min}")
        if self.sensitivity < 0 or self.age_scale <= 0:
            raise ValueError("gating.sensitivity must be >= 0 and gating.age_scale > 0")


def gate(chem: Array, sensitivity: float | Array, p_min: float) -> Array:
    """Plasticity per unit: ``clip(exp(-s c), p_min, 1)``."""
    return _xp.clip(_xp.exp(-sensitivity * chem), p_min, 1.0)


def importance(W_out: Array, activity: Array) -> Array:
    """``I_j = ||W_out[:, j]||_2 * activity_j`` (activity: mean |h_j|)."""
    return _xp.sqrt(_xp.sum_axis(W_out * W_out, 0)) * activity


def adaptive_sensitivity(
    base: float, importance: Array, age: Array, importance_gain: float, age_gain: float, age_scale: float
) -> Array:
    """``s_j = base * (1 + g_imp I_j / mean(I) + g_age a_j / (a_j + a_0))``."""
    imp = importance / (_xp.mean(importance) + 1e-12)
    return base * (1.0 + importance_gain * imp + age_gain * age / (age + age_scale))


def sensitivity_for(cfg: GatingConfig, W_out: Array, activity: Array, age: Array) -> float | Array:
    """The sensitivity the config asks for (constant, or adaptive per unit)."""
    if not cfg.adaptive:
        return cfg.sensitivity
    return adaptive_sensitivity(
        cfg.sensitivity, importance(W_out, activity), age, cfg.importance_gain, cfg.age_gain, cfg.age_scale
    )


def gate_rows(grad: Array, p: Array) -> Array:
    """Gate a per-unit-row update (``W_in`` (H, D) or ``b_in`` (H,)): row j times ``p_j``."""
    return grad * (p[:, None] if grad.ndim == 2 else p)


def gate_columns(grad: Array, p: Array) -> Array:
    """Gate a per-unit-column update (``W_out`` (C, H)): column j times ``p_j``."""
    return grad * p[None, :]
