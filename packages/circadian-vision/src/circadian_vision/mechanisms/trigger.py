"""When to sleep.

``fixed``: every ``every`` wake steps. ``adaptive``: only when all three conditions hold:

1. *spacing*: at least ``min_spacing`` wake steps since the last sleep;
2. *energy plateau*: over the last ``window`` energies, the mean of the newer half improved on the
   mean of the older half by less than ``plateau_tol`` (relative): wake learning has stalled;
3. *chemical spread*: the normalized chemical variance ``Var(c / mean(c))`` (the squared coefficient
   of variation) is at least ``spread_min``: units differ enough in use for split/prune to act on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

from circadian_vision.mechanisms import _xp
from circadian_vision.mechanisms._xp import Array


@dataclasses.dataclass(frozen=True)
class TriggerConfig:
    kind: Literal["adaptive", "fixed"] = "adaptive"
    every: int = 200  # fixed: wake steps between sleeps
    min_spacing: int = 100  # adaptive: condition 1
    window: int = 40  # adaptive: energies compared for the plateau (condition 2)
    plateau_tol: float = 0.02
    spread_min: float = 0.01  # adaptive: condition 3

    def __post_init__(self) -> None:
        if self.kind not in ("adaptive", "fixed"):
            raise ValueError(f"trigger.kind must be 'adaptive' or 'fixed', got {self.kind!r}")
        if self.window < 2 or self.every < 1 or self.min_spacing < 0:
            raise ValueError("trigger: need window >= 2, every >= 1, min_spacing >= 0")


def energy_plateau(energies: Sequence[float], window: int, tol: float) -> bool:
    """True when the newer half of the last ``window`` energies improved by less than ``tol``."""
    if len(energies) < window:
        return False
    recent = [float(e) for e in energies[-window:]]
    half = window // 2
    older = sum(recent[:half]) / half
    newer = sum(recent[half:]) / (window - half)
    return (older - newer) / max(abs(older), 1e-12) < tol


def chemical_spread(chem: Array) -> float:
    """``Var(c / mean(c))`` (0 when every chemical is 0)."""
    m = _xp.mean(chem)
    if m <= 0:
        return 0.0
    return _xp.var(chem / m)


def trigger_conditions(
    energies: Sequence[float], chem: Array, steps_since: int, cfg: TriggerConfig
) -> dict[str, bool]:
    """The three adaptive conditions, by name (for logging and tests)."""
    return {
        "spacing": steps_since >= cfg.min_spacing,
        "plateau": energy_plateau(energies, cfg.window, cfg.plateau_tol),
        "spread": chemical_spread(chem) >= cfg.spread_min,
    }


def should_sleep(energies: Sequence[float], chem: Array, steps_since: int, cfg: TriggerConfig) -> bool:
    """Sleep now? (``fixed``: spacing only; ``adaptive``: all three conditions.)"""
    if cfg.kind == "fixed":
        return steps_since >= cfg.every
    if steps_since < cfg.min_spacing:  # cheapest first
        return False
    return all(trigger_conditions(energies, chem, steps_since, cfg).values())
