"""Pruning of low-chemical old units, immediate or gradual.

Candidates (adaptive threshold): units with ``c < fraction * mean(c)`` that have lived at least
``min_age`` wake steps, lowest chemical first. ``immediate`` removes them at once (optionally
folding their mean output contribution ``W_out[:, j] mean(h_j)`` into the output bias);
``gradual`` multiplies their outgoing column by ``fade`` at each sleep and removes them after
``fade_sleeps`` sleeps, so the function changes in small steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

from circadian_vision.mechanisms import _xp
from circadian_vision.mechanisms._xp import Array
from circadian_vision.mechanisms.split import _check_idx


@dataclasses.dataclass(frozen=True)
class PruneConfig:
    enabled: bool = True
    mode: Literal["immediate", "gradual"] = "immediate"
    fraction: float = 0.5  # prune units with c < fraction * mean(c) ...
    min_age: int = 200  # ... that have lived at least this many wake steps
    compensate: bool = True  # immediate: fold the mean output contribution into the output bias
    fade: float = 0.5  # gradual: outgoing column multiplied by this per sleep ...
    fade_sleeps: int = 2  # ... and removed after this many sleeps

    def __post_init__(self) -> None:
        if self.mode not in ("immediate", "gradual"):
            raise ValueError(f"prune.mode must be 'immediate' or 'gradual', got {self.mode!r}")
        if not 0.0 <= self.fade < 1.0 or self.fade_sleeps < 1:
            raise ValueError("prune: need 0 <= fade < 1 and fade_sleeps >= 1")


def prune_candidates(
    chem: Array, age: Array, k: int, min_age: int = 0, fraction: float = 0.5, exclude: Sequence[int] = ()
) -> list[int]:
    """Up to ``k`` units with ``c < fraction * mean(c)`` and ``age >= min_age``, lowest first."""
    if k <= 0:
        return []
    thr = fraction * _xp.mean(chem)
    values, ages = _xp.to_list(chem), _xp.to_list(age)
    skip = set(int(i) for i in exclude)
    order = _xp.argsort(chem)
    return [j for j in order if values[j] < thr and ages[j] >= min_age and j not in skip][:k]


def remove_units(x: Array, idx: Sequence[int], axis: int = 0) -> Array:
    """``x`` without the entries ``idx`` along ``axis`` (0: rows / vector entries, 1: columns)."""
    idx = _check_idx(idx, x.shape[axis])
    mask = _xp.keep_mask(x.shape[axis], idx, x)
    return x[mask] if axis == 0 else x[:, mask]


def prune_units(W_in: Array, b_in: Array, W_out: Array, idx: Sequence[int]) -> tuple[Array, Array, Array]:
    """Remove units ``idx``: their rows of ``W_in``/``b_in`` and columns of ``W_out``."""
    return remove_units(W_in, idx, 0), remove_units(b_in, idx, 0), remove_units(W_out, idx, 1)


def compensate_bias(b_out: Array, W_out: Array, idx: Sequence[int], mean_activity: Array) -> Array:
    """``b_out + W_out[:, idx] @ mean_activity[idx]``: keeps the pruned units' average output."""
    idx = _check_idx(idx, W_out.shape[1])
    if not idx:
        return _xp.copy(b_out)
    ii = _xp.index(idx, W_out)
    return b_out + W_out[:, ii] @ mean_activity[ii]


def fade_columns(W_out: Array, idx: Sequence[int], factor: float) -> Array:
    """Gradual pruning step: the outgoing columns ``idx`` multiplied by ``factor``."""
    idx = _check_idx(idx, W_out.shape[1])
    out = _xp.copy(W_out)
    if idx:
        ii = _xp.index(idx, W_out)
        out[:, ii] = factor * W_out[:, ii]
    return out
