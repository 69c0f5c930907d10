"""How much a sleep may change: splits, prunes and replay steps.

With ``adaptive`` the base budget is scaled by how differentiated the units are,
``k = clip(spread(c) / spread_ref, scale_min, scale_max)`` (``spread`` as in the trigger, the
variance of ``c / g``), else ``k = 1``. Then ``n_split = min(round(k split), max_width - width)``,
``n_prune = min(round(k prune), width + n_split - min_width)`` and
``replay_steps = round(k replay_steps)``, so the width stays in ``[min_width, max_width]``.

Progress windows (the prototype's ``sleep_split_only_until_fraction`` /
``sleep_prune_only_after_fraction`` schedule, ``_resolve_sleep_budgets`` in
OptimumAF/Circadian-Predictive-Coding@8793c49, src/core/circadian_predictive_coding.py): with the
training progress ``t`` in [0, 1] known, no split once ``t >= split_until`` and no prune while
``t < prune_from`` (None: no window). A sleep whose windows leave neither splits nor prunes is
skipped entirely, as the prototype skips it (``SleepBudget.skip``).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from circadian_vision.mechanisms._xp import Array
from circadian_vision.mechanisms.trigger import PROTOTYPE_SPREAD_MIN, chemical_spread


@dataclasses.dataclass(frozen=True)
class BudgetConfig:
    split: int = 4
    prune: int = 2
    replay_steps: int = 20
    adaptive: bool = True
    spread_ref: float = PROTOTYPE_SPREAD_MIN
    scale_min: float = 0.5
    scale_max: float = 2.0
    split_until: float | None = None  # no split once training progress reaches this fraction
    prune_from: float | None = None  # no prune before training progress reaches this fraction

    def __post_init__(self) -> None:
        if min(self.split, self.prune, self.replay_steps) < 0:
            raise ValueError("budget: split, prune and replay_steps must be >= 0")
        if not 0 <= self.scale_min <= self.scale_max or self.spread_ref <= 0:
            raise ValueError("budget: need 0 <= scale_min <= scale_max and spread_ref > 0")
        for name in ("split_until", "prune_from"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v <= 1.0:
                raise ValueError(f"budget.{name} must be in [0, 1] or null, got {v}")


class SleepBudget(NamedTuple):
    n_split: int
    n_prune: int
    replay_steps: int
    scale: float
    skip: bool = False  # the progress windows closed both split and prune: the sleep is skipped


def budget_scale(chem: Array, cfg: BudgetConfig, gain: float = 1.0) -> float:
    if not cfg.adaptive:
        return 1.0
    return min(max(chemical_spread(chem, gain) / cfg.spread_ref, cfg.scale_min), cfg.scale_max)


def sleep_budget(
    chem: Array,
    width: int,
    min_width: int,
    max_width: int,
    cfg: BudgetConfig,
    *,
    gain: float = 1.0,
    progress: float | None = None,
) -> SleepBudget:
    """The budget of one sleep for a layer of ``width`` units bounded to ``[min_width, max_width]``."""
    if not 1 <= min_width <= max_width:
        raise ValueError(f"budget: need 1 <= min_width ({min_width}) <= max_width ({max_width})")
    k = budget_scale(chem, cfg, gain)
    split_open = progress is None or cfg.split_until is None or progress < cfg.split_until
    prune_open = progress is None or cfg.prune_from is None or progress >= cfg.prune_from
    n_split = max(0, min(int(round(k * cfg.split)), max_width - width)) if split_open else 0
    n_prune = max(0, min(int(round(k * cfg.prune)), width + n_split - min_width)) if prune_open else 0
    windowed = cfg.split_until is not None or cfg.prune_from is not None
    skip = windowed and progress is not None and not (split_open and cfg.split) and not (prune_open and cfg.prune)
    return SleepBudget(n_split, n_prune, int(round(k * cfg.replay_steps)), k, bool(skip))
