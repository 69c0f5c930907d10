"""Rollback guard: undo a sleep that made the network worse on held-out TRAINING data.

``snapshot`` copies a (nested) dict of arrays before sleep; after sleep the loss on a held-out
slice of the training data (never the test set) is compared with the loss before, and
:func:`should_rollback` says whether to ``restore`` the snapshot (bit-identical copies).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from circadian_vision.mechanisms import _xp


@dataclasses.dataclass(frozen=True)
class RollbackConfig:
    enabled: bool = True
    tolerance: float = 0.02  # roll back when held-out loss rises by more than this fraction

    def __post_init__(self) -> None:
        if self.tolerance < 0:
            raise ValueError(f"rollback.tolerance must be >= 0, got {self.tolerance}")


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return _xp.copy(value)
    return value


def snapshot(state: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``state`` (arrays copied bit for bit, on their device)."""
    return _copy(state)


def restore(snap: Mapping[str, Any]) -> dict[str, Any]:
    """Fresh copies of the snapshot's values (the snapshot itself stays reusable)."""
    return _copy(snap)


def should_rollback(loss_before: float, loss_after: float, tolerance: float) -> bool:
    """``loss_after > loss_before + tolerance |loss_before|``, or a non-finite ``loss_after``."""
    after = float(loss_after)
    if not math.isfinite(after):
        return True
    before = float(loss_before)
    return after > before + tolerance * abs(before)


def sleep_verdict(cfg: RollbackConfig, loss_before: float | None, loss_after: float | None) -> bool:
    """Whether this sleep is rolled back: the guard is on, both losses exist and the rise is too large."""
    return bool(
        cfg.enabled
        and loss_before is not None
        and loss_after is not None
        and should_rollback(loss_before, loss_after, cfg.tolerance)
    )


def tally_sleep(totals: dict[str, int], *, splits: int, prunes: int, rolled_back: bool) -> None:
    """Count one sleep in ``totals``: attempts always, splits and prunes only if the sleep was kept."""
    totals["sleeps"] += 1
    totals["split_attempts"] += splits
    totals["prune_attempts"] += prunes
    if rolled_back:
        totals["rollbacks"] += 1
    else:
        totals["splits"] += splits
        totals["prunes"] += prunes
