"""The one place that tells NumPy arrays from torch tensors.

Every mechanism is written against the handful of functions below, so it runs unchanged on
``numpy.ndarray`` and ``torch.Tensor`` inputs (and returns the same kind). torch is never imported
here unless a tensor is passed in (then it is already imported), so the NumPy path stays free of it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

Array = Any  # numpy.ndarray or torch.Tensor


def is_torch(x: Any) -> bool:
    """True for a torch tensor (checked by type, without importing torch)."""
    return type(x).__module__.partition(".")[0] == "torch"


def _torch() -> Any:
    return sys.modules["torch"]


def exp(x: Array) -> Array:
    return x.exp() if is_torch(x) else np.exp(x)


def tanh(x: Array) -> Array:
    return x.tanh() if is_torch(x) else np.tanh(x)


def sqrt(x: Array) -> Array:
    return x.sqrt() if is_torch(x) else np.sqrt(x)


def clip(x: Array, lo: float | Array | None, hi: float | Array | None) -> Array:
    """Elementwise clip to ``[lo, hi]`` (either bound may be None)."""
    if is_torch(x):
        return x.clamp(min=lo, max=hi)
    return np.clip(x, lo, hi)


def concat(xs: Sequence[Array], axis: int = 0) -> Array:
    if is_torch(xs[0]):
        return _torch().cat(list(xs), dim=axis)
    return np.concatenate(list(xs), axis=axis)


def copy(x: Array) -> Array:
    """A new array with the same values (bit for bit), dtype and device."""
    if is_torch(x):
        return x.detach().clone()
    return np.array(x, copy=True)


def zeros(n: int, like: Array) -> Array:
    """A length-``n`` zero vector with ``like``'s kind, dtype and device."""
    if is_torch(like):
        return _torch().zeros(n, dtype=like.dtype, device=like.device)
    return np.zeros(n, dtype=like.dtype)


def full(n: int, value: float, like: Array) -> Array:
    if is_torch(like):
        return _torch().full((n,), value, dtype=like.dtype, device=like.device)
    return np.full(n, value, dtype=like.dtype)


def sum_axis(x: Array, axis: int) -> Array:
    return x.sum(dim=axis) if is_torch(x) else x.sum(axis=axis)


def mean(x: Array) -> float:
    return float(x.mean())


def var(x: Array) -> float:
    """Population variance (ddof 0) as a Python float."""
    if is_torch(x):
        return float(x.var(correction=0))
    return float(np.var(x))


def std(x: Array) -> float:
    """Population standard deviation (ddof 0) as a Python float."""
    if is_torch(x):
        return float(x.std(correction=0))
    return float(np.std(x))


def to_list(x: Array) -> list[Any]:
    return [v for v in (x.tolist() if hasattr(x, "tolist") else list(x))]


def argsort(x: Array, *, descending: bool = False) -> list[int]:
    """Indices that sort ``x`` (stable: ties keep index order), as Python ints."""
    if is_torch(x):
        order = _torch().argsort(x, descending=descending, stable=True)
        return [int(i) for i in order.tolist()]
    order = np.argsort(-x if descending else x, kind="stable")
    return [int(i) for i in order]


def index(idx: Sequence[int], like: Array) -> Array:
    """Integer indices in the kind ``like`` can be indexed with."""
    if is_torch(like):
        return _torch().as_tensor(list(idx), dtype=_torch().long, device=like.device)
    return np.asarray(list(idx), dtype=np.int64)


def keep_mask(n: int, drop: Sequence[int], like: Array) -> Array:
    """Boolean mask of length ``n``: False at ``drop``."""
    if is_torch(like):
        mask = _torch().ones(n, dtype=_torch().bool, device=like.device)
    else:
        mask = np.ones(n, dtype=bool)
    if len(drop):
        mask[index(drop, like)] = False
    return mask


def class_sums(labels: Array, values: Array, num_classes: int) -> Array:
    """``out[c] = sum(values[labels == c])``."""
    if is_torch(values):
        out = _torch().zeros(num_classes, dtype=values.dtype, device=values.device)
        return out.index_add(0, labels.long(), values)
    return np.bincount(np.asarray(labels, dtype=np.int64), weights=values, minlength=num_classes).astype(values.dtype)


def to_numpy(x: Array) -> np.ndarray:
    """A NumPy copy of ``x`` (a torch tensor is detached and moved to the CPU)."""
    if is_torch(x):
        return x.detach().cpu().numpy().copy()
    return np.array(x, copy=True)


def set_at(x: Array, idx: Sequence[int], value: float) -> Array:
    """A copy of vector ``x`` with ``x[idx] = value``."""
    out = copy(x)
    if len(idx):
        out[index(idx, x)] = value
    return out


def add_at(x: Array, idx: Sequence[int], value: float) -> Array:
    """A copy of vector ``x`` with ``value`` added at ``idx``."""
    out = copy(x)
    if len(idx):
        ii = index(idx, x)
        out[ii] = out[ii] + value
    return out


def all_finite(x: Array) -> bool:
    if is_torch(x):
        return bool(_torch().isfinite(x).all())
    return bool(np.isfinite(x).all())
