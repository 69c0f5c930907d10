"""Continual-learning metrics over an accuracy matrix.

``R[i, j]`` is the accuracy on task ``j`` after training on task ``i`` (``T x T``).

* ACC (average accuracy), BWT (backward transfer) and FWT (forward transfer) follow
  Lopez-Paz & Ranzato, "Gradient Episodic Memory for Continual Learning" (2017).
* Forgetting follows Chaudhry et al., "Riemannian Walk for Incremental Learning" (2018): for each
  task ``j < T-1``, the best accuracy over the earlier rounds ``l < T-1`` minus the final accuracy,
  averaged over those tasks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _matrix(R: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    arr = np.asarray(R, dtype=float)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(f"accuracy matrix must be square T x T with T >= 1, got shape {arr.shape}")
    return arr


def average_accuracy(R: Sequence[Sequence[float]] | np.ndarray) -> float:
    """ACC = mean_j R[T-1, j]: accuracy on every task after the last one."""
    arr = _matrix(R)
    return float(arr[-1].mean())


def backward_transfer(R: Sequence[Sequence[float]] | np.ndarray) -> float:
    """BWT = mean_{j < T-1} (R[T-1, j] - R[j, j]); negative means forgetting. 0 for T = 1."""
    arr = _matrix(R)
    T = arr.shape[0]
    if T == 1:
        return 0.0
    return float(np.mean([arr[-1, j] - arr[j, j] for j in range(T - 1)]))


def forward_transfer(
    R: Sequence[Sequence[float]] | np.ndarray, baseline: Sequence[float] | np.ndarray
) -> float:
    """FWT = mean_{j >= 1} (R[j-1, j] - b[j]), with ``b[j]`` the accuracy of a random init on task j."""
    arr = _matrix(R)
    b = np.asarray(baseline, dtype=float)
    T = arr.shape[0]
    if b.shape != (T,):
        raise ValueError(f"baseline must have one accuracy per task ({T}), got shape {b.shape}")
    if T == 1:
        return 0.0
    return float(np.mean([arr[j - 1, j] - b[j] for j in range(1, T)]))


def forgetting(R: Sequence[Sequence[float]] | np.ndarray) -> float:
    """Average forgetting (Chaudhry et al. 2018) after the last task; 0 for T = 1.

    f_j = max_{l in 0..T-2} R[l, j] - R[T-1, j] for j in 0..T-2, averaged over j.
    Rounds before task ``j`` was trained count too (as in the paper's definition over l < T).
    """
    arr = _matrix(R)
    T = arr.shape[0]
    if T == 1:
        return 0.0
    return float(np.mean([arr[: T - 1, j].max() - arr[-1, j] for j in range(T - 1)]))


def accuracy_matrix_summary(
    R: Sequence[Sequence[float]] | np.ndarray, baseline: Sequence[float] | np.ndarray | None = None
) -> dict[str, float]:
    """ACC, BWT, forgetting (and FWT when a random-init ``baseline`` is given) as one dict."""
    out = {
        "acc": average_accuracy(R),
        "bwt": backward_transfer(R),
        "forgetting": forgetting(R),
    }
    if baseline is not None:
        out["fwt"] = forward_transfer(R, baseline)
    return out
