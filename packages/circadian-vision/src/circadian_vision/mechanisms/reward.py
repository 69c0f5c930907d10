"""Reward-modulated learning rate: learn faster when the error is worse than expected.

An exponential moving average tracks the expected error, ``m <- beta m + (1 - beta) e`` (the first
error initialises it). The learning-rate scale for an error ``e`` (computed before the EMA update)
is ``clip(1 + g (e - m) / (|m| + eps), lo, hi)``: a surprise (error above expectation, a negative
reward) raises plasticity, a better-than-expected batch lowers it.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    enabled: bool = True
    decay: float = 0.95  # beta
    gain: float = 1.0  # g
    scale_min: float = 0.8  # lo
    scale_max: float = 1.4  # hi

    def __post_init__(self) -> None:
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"reward.decay must be in [0, 1), got {self.decay}")
        if not 0 < self.scale_min <= 1.0 <= self.scale_max:
            raise ValueError("reward: need 0 < scale_min <= 1 <= scale_max")


def ema_update(ema: float | None, value: float, decay: float) -> float:
    """``decay * ema + (1 - decay) * value``; ``value`` itself when there is no EMA yet."""
    value = float(value)
    return value if ema is None else decay * float(ema) + (1.0 - decay) * value


def lr_scale(error: float, error_ema: float | None, gain: float, lo: float, hi: float, eps: float = 1e-8) -> float:
    """``clip(1 + gain (error - ema) / (|ema| + eps), lo, hi)``; 1 when there is no EMA yet."""
    if error_ema is None:
        return 1.0
    raw = 1.0 + gain * (float(error) - float(error_ema)) / (abs(float(error_ema)) + eps)
    return min(max(raw, lo), hi)


@dataclasses.dataclass
class RewardModulator:
    """Stateful wrapper: ``scale = mod.step(error)`` returns the scale and updates the EMA."""

    cfg: RewardConfig = dataclasses.field(default_factory=RewardConfig)
    ema: float | None = None

    def step(self, error: float) -> float:
        scale = lr_scale(error, self.ema, self.cfg.gain, self.cfg.scale_min, self.cfg.scale_max)
        self.ema = ema_update(self.ema, error, self.cfg.decay)
        return scale if self.cfg.enabled else 1.0
