"""How much a sleep may change: splits, prunes and replay steps.

With ``adaptive`` the base budget is scaled by how differentiated the units are,
``k = clip(spread(c) / spread_ref, scale_min, scale_max)`` (``spread`` as in the trigger), else
``k = 1``. Then ``n_split = min(round(k split), max_width - width)``,
``n_prune = min(round(k prune), width + n_split - min_width)`` and
``replay_steps = round(k replay_steps)``, so the width stays in ``[min_width, max_width]``.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from circadian_vision.mechanisms._xp import Array
from circadian_vision.mechanisms.trigger import chemical_spread


@dataclasses.dataclass(frozen=True)
class BudgetConfig:
    split: int = 4
    prune: int = 2
    replay_steps: int = 20
    adaptive: bool = True
    spread_ref: float = 0.05
    scale_min: float = 0.5
    scale_max: float = 2.0

    def __post_init__(self) -> None:
        if min(self.split, self.prune, self.replay_steps) < 0:
            raise ValueError("budget: split, prune and replay_steps must be >= 0")
        if not 0 <= self.scale_min <= self.scale_max or self.spread_ref <= 0:
            raise ValueError("budget: need 0 <= scale_min <= scale_max and spread_ref > 0")


class SleepBudget(NamedTuple):
    n_split: int
    n_prune: int
    replay_steps: int
    scale: float


def budget_scale(chem: Array, cfg: BudgetConfig) -> float:
    if not cfg.adaptive:
        return 1.0
    return min(max(chemical_spread(chem) / cfg.spread_ref, cfg.scale_min), cfg.scale_max)


def sleep_budget(chem: Array, width: int, min_width: int, max_width: int, cfg: BudgetConfig) -> SleepBudget:
    """The budget of one sleep for a layer of ``width`` units bounded to ``[min_width, max_width]``."""
    if not 1 <= min_width <= max_width:
        raise ValueError(f"budget: need 1 <= min_width ({min_width}) <= max_width ({max_width})")
    k = budget_scale(chem, cfg)
    n_split = max(0, min(int(round(k * cfg.split)), max_width - width))
    n_prune = max(0, min(int(round(k * cfg.prune)), width + n_split - min_width))
    return SleepBudget(n_split, n_prune, int(round(k * cfg.replay_steps)), k)
