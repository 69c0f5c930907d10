"""Function-preserving split of high-chemical units, with the symmetry broken as the prototype does.

A unit j with ``W_in`` row ``w_j``, bias ``b_j`` and outgoing column ``v_j = W_out[:, j]`` becomes a
parent and a child with the same incoming weights and bias, and outgoing columns

    parent: share v_j + d_j        child: (1 - share) v_j - d_j,
    d_j = noise * max(||v_j||, 1e-3) * eps_j,   eps_j ~ N(0, I) (drawn by the caller)

Both compute the same ``h_j``, so ``(share v_j + d_j) h_j + ((1 - share) v_j - d_j) h_j = v_j h_j``:
the network function is unchanged up to floating-point rounding (:data:`FUNCTION_TOLERANCE`).
Without ``d_j`` (``noise = 0``) and with ``share = 1/2`` the two units would receive identical
updates forever and never become two units; the offset ``d_j`` (the prototype's
``split_noise_scale = 0.02`` of the parent's outgoing norm, its ``_split_neurons``) makes their
outgoing weights differ, so their inferred states, and then their incoming updates, differ.
Children are appended at the end, in the order of ``idx``. Shapes: ``W_in`` (H, D), ``b_in`` (H,),
``W_out`` (C, H).

Candidates (adaptive threshold): units whose chemical exceeds ``mean(c) + z std(c)``, highest first.

:func:`distinct_units` counts the units that are really different: units whose incoming weight
rows have cosine similarity above ``0.999`` count once (a split child that never separated from
its parent adds width but no distinct unit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from circadian_vision.mechanisms import _xp
from circadian_vision.mechanisms._xp import Array

# A split changes the network's outputs by at most this much (absolute, on logits of order 1):
# exact in real arithmetic, one rounding of share * v + d and (1 - share) * v - d in floating point.
FUNCTION_TOLERANCE = {"float64": 1e-12, "float32": 1e-5}
DISTINCT_COSINE = 0.999


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    enabled: bool = True
    z: float = 0.5  # split units with c > mean(c) + z std(c)
    share: float = 0.5  # parent's share of the outgoing weights; the child gets 1 - share
    child_chemical: float = 0.5  # parent and child each keep this fraction of the parent's chemical
    noise: float = 0.02  # symmetry-breaking offset of the outgoing weights, relative to ||v_j|| (prototype: 0.02)

    def __post_init__(self) -> None:
        if not 0.0 < self.share < 1.0:
            raise ValueError(f"split.share must be in (0, 1), got {self.share}")
        if self.noise < 0:
            raise ValueError(f"split.noise must be >= 0, got {self.noise}")


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
    W_in: Array,
    b_in: Array,
    W_out: Array,
    idx: Sequence[int],
    share: float = 0.5,
    *,
    noise: float = 0.0,
    eps: Array | None = None,
) -> tuple[Array, Array, Array]:
    """Split units ``idx``; returns new ``(W_in, b_in, W_out)`` with ``len(idx)`` children appended.

    ``eps`` (C, len(idx)): standard normal draws of the caller's generator, used when ``noise > 0``.
    """
    idx = _check_idx(idx, W_in.shape[0])
    if not idx:
        return _xp.copy(W_in), _xp.copy(b_in), _xp.copy(W_out)
    ii = _xp.index(idx, W_in)
    cols = W_out[:, ii]
    offset = 0.0 * cols
    if noise > 0:
        if eps is None or tuple(eps.shape) != tuple(cols.shape):
            raise ValueError(f"split: noise > 0 needs eps of shape {tuple(cols.shape)}")
        norms = _xp.clip(_xp.sqrt(_xp.sum_axis(cols * cols, 0)), 1e-3, None)
        offset = noise * norms[None, :] * eps
    parent = _xp.copy(W_out)
    parent[:, ii] = share * cols + offset
    return (
        _xp.concat([W_in, W_in[ii]], axis=0),
        _xp.concat([b_in, b_in[ii]], axis=0),
        _xp.concat([parent, (1.0 - share) * cols - offset], axis=1),
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


def distinct_units(W_in: Array, cosine: float = DISTINCT_COSINE) -> int:
    """The number of units left when units whose incoming rows have cosine > ``cosine`` count once.

    Greedy in index order: a unit is new unless its row is that close to a unit already counted.
    Rows of zero norm count as one group of their own.
    """
    W = _xp.to_numpy(W_in).astype(np.float64)
    if W.shape[0] == 0:
        return 0
    norms = np.linalg.norm(W, axis=1)
    unit = W / np.where(norms > 0, norms, 1.0)[:, None]
    gram = unit @ unit.T
    kept: list[int] = []
    zero_seen = False
    for j in range(W.shape[0]):
        if norms[j] == 0:
            if not zero_seen:
                kept.append(j)
            zero_seen = True
            continue
        if not kept or not np.any(gram[j, kept] > cosine):
            kept.append(j)
    return len(kept)
