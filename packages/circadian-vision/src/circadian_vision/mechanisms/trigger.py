"""When to sleep.

``fixed``: every ``every`` wake steps. ``adaptive``: only when all three conditions hold:

1. *spacing*: at least ``min_spacing`` wake steps since the last sleep;
2. *energy plateau*: over the last ``window`` energies, the mean of the newer half improved on the
   mean of the older half by less than ``plateau_tol`` (relative): wake learning has stalled;
3. *chemical spread*: the variance of the chemical in units of usage, ``Var(c / g)`` with ``g``
   the chemical's steady-state gain (:func:`~circadian_vision.mechanisms.chemicals.steady_gain`),
   is at least ``spread_min``: units differ enough in use for split/prune to act on (``spread_gate:
   false`` drops this condition, an ablation).

The spread is the prototype's gate (``CircadianPredictiveCodingNetwork.should_trigger_sleep``,
OptimumAF/Circadian-Predictive-Coding@8793c49, src/core/circadian_predictive_coding.py:
``np.var(chemical) >= 0.02``) made independent of the chemical's constants: the prototype's
chemical (decay 0.995, rate 0.02) has gain 4, so its threshold is ``Var(c / 4) >= 0.02 / 16 =
0.00125``, our default. The earlier version measured ``Var(c / mean(c))`` (a squared coefficient
of variation) against 0.01: that quantity falls when every unit is used more, as during a shift
(mean chemical 0.41 -> 0.59 in the hardest case while ``Var(c)`` stayed above the prototype's
threshold), so it never let the trigger fire in phase B.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

from circadian_vision.mechanisms import _xp
from circadian_vision.mechanisms._xp import Array

PROTOTYPE_SPREAD_MIN = 0.02 / 4.0**2  # Var(c) >= 0.02 at the prototype's gain 4


@dataclasses.dataclass(frozen=True)
class TriggerConfig:
    kind: Literal["adaptive", "fixed"] = "adaptive"
    every: int = 200  # fixed: wake steps between sleeps
    min_spacing: int = 100  # adaptive: condition 1
    window: int = 40  # adaptive: energies compared for the plateau (condition 2)
    plateau_tol: float = 0.02
    spread_min: float = PROTOTYPE_SPREAD_MIN  # adaptive: condition 3, Var(c / g)
    spread_gate: bool = True  # adaptive: condition 3 on (false: spacing and plateau only)

    def __post_init__(self) -> None:
        if self.kind not in ("adaptive", "fixed"):
            raise ValueError(f"trigger.kind must be 'adaptive' or 'fixed', got {self.kind!r}")
        if self.window < 2 or self.every < 1 or self.min_spacing < 0:
            raise ValueError("trigger: need window >= 2, every >= 1, min_spacing >= 0")
        if self.spread_min < 0:
            raise ValueError(f"trigger.spread_min must be >= 0, got {self.spread_min}")


def energy_plateau(energies: Sequence[float], window: int, tol: float) -> bool:
    """True when the newer half of the last ``window`` energies improved by less than ``tol``."""
    if len(energies) < window:
        return False
    recent = [float(e) for e in energies[-window:]]
    half = window // 2
    older = sum(recent[:half]) / half
    newer = sum(recent[half:]) / (window - half)
    return (older - newer) / max(abs(older), 1e-12) < tol


def chemical_spread(chem: Array, gain: float = 1.0) -> float:
    """``Var(c / gain)``: the spread of the units' chemicals in units of usage (population variance)."""
    if gain <= 0:
        raise ValueError(f"chemical_spread: gain must be > 0, got {gain}")
    return _xp.var(chem) / (gain * gain)


def trigger_conditions(
    energies: Sequence[float], chem: Array, steps_since: int, cfg: TriggerConfig, gain: float = 1.0
) -> dict[str, bool]:
    """The three adaptive conditions, by name (for logging and tests)."""
    return {
        "spacing": steps_since >= cfg.min_spacing,
        "plateau": energy_plateau(energies, cfg.window, cfg.plateau_tol),
        "spread": (not cfg.spread_gate) or chemical_spread(chem, gain) >= cfg.spread_min,
    }


def should_sleep(
    energies: Sequence[float], chem: Array, steps_since: int, cfg: TriggerConfig, gain: float = 1.0
) -> bool:
    """Sleep now? (``fixed``: spacing only; ``adaptive``: all three conditions.)"""
    if cfg.kind == "fixed":
        return steps_since >= cfg.every
    if steps_since < cfg.min_spacing:  # cheapest first
        return False
    return all(trigger_conditions(energies, chem, steps_since, cfg, gain).values())
