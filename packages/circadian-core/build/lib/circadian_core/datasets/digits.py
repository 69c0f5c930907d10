"""Embedded datasets from scikit-learn's bundled digits (1797 images of 8x8, 10 classes).

``split_digits`` builds Split-Digits: 5 tasks of 2 classes each; the class order is the natural
0..9 or a permutation drawn from ``class_order_seed``.
"""

from __future__ import annotations

import numpy as np

from circadian_core.datasets.registry import ArrayDataset, Task, register_dataset


def _raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / 16.0  # 0..1
    return images, np.asarray(bunch.target, dtype=np.int64)


@register_dataset("digits")
def digits(test_fraction: float = 0.25, split_seed: int = 0) -> ArrayDataset:
    """All 10 digit classes, a stratified train/test split fixed by ``split_seed``.

    Images are float32 in [0, 1], shape (N, 8, 8).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    x, y = _raw()
    rng = np.random.default_rng(split_seed)
    test_idx: list[np.ndarray] = []
    for label in range(10):
        idx = np.flatnonzero(y == label)
        n_test = int(round(len(idx) * test_fraction))
        test_idx.append(rng.choice(idx, size=n_test, replace=False))
    test = np.zeros(len(y), dtype=bool)
    test[np.concatenate(test_idx)] = True
    return ArrayDataset(
        name="digits",
        x_train=x[~test],
        y_train=y[~test],
        x_test=x[test],
        y_test=y[test],
        classes=[str(i) for i in range(10)],
    )


def class_order(seed: int | None, num_classes: int = 10) -> list[int]:
    """Natural order for ``seed=None``, else a permutation drawn from ``seed``."""
    if seed is None:
        return list(range(num_classes))
    return [int(c) for c in np.random.default_rng(seed).permutation(num_classes)]


@register_dataset("split_digits")
def split_digits(
    n_tasks: int = 5,
    class_order_seed: int | None = None,
    test_fraction: float = 0.25,
    split_seed: int = 0,
) -> list[Task]:
    """Split-Digits: ``n_tasks`` tasks of ``10 // n_tasks`` classes (global labels kept)."""
    if n_tasks < 1 or 10 % n_tasks:
        raise ValueError(f"n_tasks must divide 10, got {n_tasks}")
    data = digits(test_fraction=test_fraction, split_seed=split_seed)
    order = class_order(class_order_seed)
    per = 10 // n_tasks
    tasks = []
    for t in range(n_tasks):
        labels = order[t * per : (t + 1) * per]
        tr = np.isin(data.y_train, labels)
        te = np.isin(data.y_test, labels)
        tasks.append(
            Task(
                index=t,
                labels=labels,
                x_train=data.x_train[tr],
                y_train=data.y_train[tr],
                x_test=data.x_test[te],
                y_test=data.y_test[te],
            )
        )
    return tasks
