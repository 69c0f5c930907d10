"""Per-neuron chemical accumulation: how much each hidden unit has been used, with forgetting.

Usage of unit j on a batch is ``u_j = mean_b |h_bj|`` (:func:`usage`). Three dynamics:

* ``plain``:      ``c <- d c + r u``
* ``saturating``: ``c <- d c + r u / (1 + u / u_sat)``  (the input term saturates at ``r u_sat``)
* ``dual``:       ``f <- d_f f + r_f u``, ``s <- d_s s + r_s u`` and ``c = (1 - w) f + w s``
  (a fast and a slow timescale; ``w`` weighs the slow one).

State is a pair ``(fast, slow)`` of length-H vectors; the single-timescale modes keep their level in
``fast`` and leave ``slow`` untouched. Every function returns new arrays (NumPy or torch).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from circadian_vision.mechanisms import _xp
from circadian_vision.mechanisms._xp import Array

MODES = ("plain", "saturating", "dual")


@dataclasses.dataclass(frozen=True)
class ChemicalConfig:
    mode: Literal["plain", "saturating", "dual"] = "dual"
    decay: float = 0.95  # plain / saturating: d
    rate: float = 0.05  # plain / saturating: r
    saturation: float = 0.5  # saturating: u_sat
    fast_decay: float = 0.9  # dual: d_f
    fast_rate: float = 0.1  # dual: r_f
    slow_decay: float = 0.995  # dual: d_s
    slow_rate: float = 0.005  # dual: r_s
    slow_weight: float = 0.5  # dual: w

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"chemicals.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name in ("decay", "fast_decay", "slow_decay", "slow_weight"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"chemicals.{name} must be in [0, 1], got {v}")
        if self.saturation <= 0:
            raise ValueError(f"chemicals.saturation must be > 0, got {self.saturation}")


def usage(h: Array) -> Array:
    """Per-unit usage of a batch of activations ``h`` (B, H): ``mean_b |h_bj|``."""
    return abs(h).mean(0)


def accumulate_plain(c: Array, u: Array, decay: float, rate: float) -> Array:
    return decay * c + rate * u


def accumulate_saturating(c: Array, u: Array, decay: float, rate: float, saturation: float) -> Array:
    return decay * c + rate * u / (1.0 + u / saturation)


def accumulate_dual(
    fast: Array, slow: Array, u: Array, fast_decay: float, slow_decay: float, fast_rate: float, slow_rate: float
) -> tuple[Array, Array]:
    return fast_decay * fast + fast_rate * u, slow_decay * slow + slow_rate * u


def combine(fast: Array, slow: Array, slow_weight: float) -> Array:
    """The dual-timescale chemical level ``(1 - w) fast + w slow``."""
    return (1.0 - slow_weight) * fast + slow_weight * slow


def update_chemicals(fast: Array, slow: Array, u: Array, cfg: ChemicalConfig) -> tuple[Array, Array]:
    """One accumulation step of the configured dynamics; returns the new ``(fast, slow)``."""
    if cfg.mode == "plain":
        return accumulate_plain(fast, u, cfg.decay, cfg.rate), _xp.copy(slow)
    if cfg.mode == "saturating":
        return accumulate_saturating(fast, u, cfg.decay, cfg.rate, cfg.saturation), _xp.copy(slow)
    return accumulate_dual(fast, slow, u, cfg.fast_decay, cfg.slow_decay, cfg.fast_rate, cfg.slow_rate)


def steady_gain(cfg: ChemicalConfig) -> float:
    """``g`` such that a unit used at a constant level ``u`` settles at ``c = g u``.

    plain and saturating (small ``u``): ``r / (1 - d)``; dual: ``(1 - w) r_f / (1 - d_f) + w r_s / (1 - d_s)``.
    ``c / g`` reads a chemical in units of usage, whatever the dynamics' constants (the prototype's
    defaults ``d = 0.995``, ``r = 0.02`` have ``g = 4``; ours ``g = 1``). A decay of 1 never settles:
    its gain is infinite and the function raises.
    """

    def one(rate: float, decay: float) -> float:
        if decay >= 1.0:
            raise ValueError("chemicals: a decay of 1 never settles (no steady gain); use a decay below 1")
        return rate / (1.0 - decay)

    if cfg.mode == "dual":
        return (1.0 - cfg.slow_weight) * one(cfg.fast_rate, cfg.fast_decay) + cfg.slow_weight * one(cfg.slow_rate, cfg.slow_decay)
    return one(cfg.rate, cfg.decay)


def chemical_level(fast: Array, slow: Array, cfg: ChemicalConfig) -> Array:
    """The chemical ``c`` the other mechanisms read (``fast`` unless ``dual``)."""
    if cfg.mode == "dual":
        return combine(fast, slow, cfg.slow_weight)
    return _xp.copy(fast)
