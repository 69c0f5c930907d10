"""Function-preserving split of high-chemical units.

A unit j with ``W_in`` row ``w_j``, bias ``b_j`` and outgoing column ``v_j = W_out[:, j]`` becomes a
parent and a child with the same incoming weights and bias, and outgoing columns ``share v_j``
(parent) and ``(1 - share) v_j`` (child). Both compute the same ``h_j``, so
``share v_j h_j + (1 - share) v_j h_j = v_j h_j``: the network function is unchanged (exactly, up to
one rounding). ``share = 0.5`` halves the outgoing weights; any other share breaks the
parent/child symmetry while still preserving the function. Children are appended at the end, in
the order of ``idx``. Shapes: ``W_in`` (H, D), ``b_in`` (H,), ``W_out`` (C, H).

Candidates (adaptive threshold): units whose chemical exceeds ``mean(c) + z std(c)``, highest first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from circadian_vision.mechanisms import _xp
from circadian_vision.mechanisms._xp import Array


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    enabled: bool = True
    z: float = 0.5  # split units with c > mean(c) + z std(c)
    share: float = 0.5  # parent's share of the outgoing weights; the child gets 1 - share
    child_chemical: float = 0.5  # parent and child each keep this fraction of the parent's chemical

    def __post_init__(self) -> None:
        if not 0.0 < self.share < 1.0:
            raise ValueError(f"split.share must be in (0, 1), got {self.share}")


def _check_idx(idx: Sequence[int], width: int) -> list[int]:
    idx = [int(i) for i in idx]
    if len(set(idx)) != len(idx):
        raise ValueError(f"split/prune indices must be distinct, got {idx}")
    if any(not 0 <= i < width for i in idx):
        raise IndexError(f"unit index out of range [0, {width}): {idx}")
    return idx


def split_candidates(chem: Array, k: int, z: float = 0.5, exclude: Sequence[int] = ()) -> list[int]:
    """Up to ``k`` units with ``c > mean + z std``, highest chemical first (ties: lower index)."""
    if k <= 0:
        return []
    thr = _xp.mean(chem) + z * _xp.std(chem)
    values = _xp.to_list(chem)
    skip = set(int(i) for i in exclude)
    order = _xp.argsort(chem, descending=True)
    return [j for j in order if values[j] > thr and j not in skip][:k]


def split_units(
    W_in: Array, b_in: Array, W_out: Array, idx: Sequence[int], share: float = 0.5
) -> tuple[Array, Array, Array]:
    """Split units ``idx``; returns new ``(W_in, b_in, W_out)`` with ``len(idx)`` children appended."""
    idx = _check_idx(idx, W_in.shape[0])
    if not idx:
        return _xp.copy(W_in), _xp.copy(b_in), _xp.copy(W_out)
    ii = _xp.index(idx, W_in)
    cols = W_out[:, ii]
    parent = _xp.copy(W_out)
    parent[:, ii] = share * cols
    return (
        _xp.concat([W_in, W_in[ii]], axis=0),
        _xp.concat([b_in, b_in[ii]], axis=0),
        _xp.concat([parent, (1.0 - share) * cols], axis=1),
    )


def split_vector(
    v: Array, idx: Sequence[int], parent_scale: float = 1.0, child_scale: float = 1.0, child_value: float | None = None
) -> Array:
    """Per-unit state after a split: parents scaled by ``parent_scale``, children appended as
    ``child_scale * v[idx]`` (or the constant ``child_value``, e.g. age 0)."""
    idx = _check_idx(idx, v.shape[0])
    if not idx:
        return _xp.copy(v)
    ii = _xp.index(idx, v)
    out = _xp.copy(v)
    out[ii] = parent_scale * v[ii]
    child = _xp.full(len(idx), child_value, v) if child_value is not None else child_scale * v[ii]
    return _xp.concat([out, child], axis=0)
