"""The morning's decision: keep the new adapter, or roll back to yesterday's.

A decision is a list of checks (strategy objects). *Soft* checks (capability drop, old-core loss
rise) roll a night back unless rollback is disabled (the "no rollback" ablation accepts anyway
and records that it would have rolled back). *Hard* checks - a non-finite trained weight, a
non-finite loss of the new model - reject the adapter whatever the flags: an adapter that cannot
produce finite numbers would break every later night.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from circadia.config import RollbackConfig
from circadia.sleep.evaluate import EvalResult
from circadia.sleep.record import TrainSummary


class Check(Protocol):
    hard: bool

    def __call__(self, pre: EvalResult, post: EvalResult, train: TrainSummary, cfg: RollbackConfig) -> str | None:
        """A reason to reject the new adapter, or None."""
        ...


class CapabilityDrop:
    """The harness pass rate fell by more than ``max_capability_drop``."""

    hard = False

    def __call__(self, pre, post, train, cfg):
        a, b = pre.harness.pass_rate, post.harness.pass_rate
        if a is None or b is None or math.isnan(a) or math.isnan(b):  # no harness items: nothing to compare
            return None
        drop = a - b
        if drop > cfg.max_capability_drop + 1e-9:
            return f"capability dropped {drop:.3f} > {cfg.max_capability_drop}"
        return None


class OldCoreRise:
    """The old-core loss rose by more than ``max_old_core_increase`` nats (when set)."""

    hard = False

    def __call__(self, pre, post, train, cfg):
        lim = cfg.max_old_core_increase
        if lim is None or pre.old_core_loss is None or post.old_core_loss is None:
            return None
        rise = post.old_core_loss - pre.old_core_loss
        return f"old-core loss rose {rise:.3f} > {lim}" if rise > lim else None


class FiniteWeights:
    """Every trained LoRA weight is finite."""

    hard = True

    def __call__(self, pre, post, train, cfg):
        return None if train.weights_finite else "the trained adapter holds non-finite weights"


class FiniteScores:
    """The new model's held-out and old-core losses are finite numbers."""

    hard = True

    def __call__(self, pre, post, train, cfg):
        bad = [name for name, v in (("heldout_loss", post.heldout_loss), ("old_core_loss", post.old_core_loss))
               if v is not None and not math.isfinite(v)]
        return f"post {', '.join(bad)} not finite" if bad else None


CHECKS: tuple[Check, ...] = (CapabilityDrop(), OldCoreRise(), FiniteWeights(), FiniteScores())


@dataclass(frozen=True)
class Verdict:
    reasons: list[str] = field(default_factory=list)  # soft: rollback unless disabled
    hard: list[str] = field(default_factory=list)  # never accepted

    @property
    def would_roll_back(self) -> bool:
        return bool(self.reasons or self.hard)

    def accept(self, rollback_enabled: bool) -> bool:
        return not self.hard and (not self.reasons or not rollback_enabled)

    @property
    def all_reasons(self) -> list[str]:
        return [*self.hard, *self.reasons]


def decide(pre: EvalResult, post: EvalResult, train: TrainSummary, cfg: RollbackConfig,
           checks: tuple[Check, ...] = CHECKS) -> Verdict:
    """Run every check; see :class:`Verdict`."""
    soft, hard = [], []
    for check in checks:
        reason = check(pre, post, train, cfg)
        if reason:
            (hard if check.hard else soft).append(reason)
    return Verdict(reasons=soft, hard=hard)
