"""Name -> loader registry and the two array containers every loader returns."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

import numpy as np


@dataclasses.dataclass
class ArrayDataset:
    """A train/test split held as NumPy arrays (images stay uint8 NHWC; features float32)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclasses.dataclass
class Task:
    """One task of a task sequence: its data and the global labels it contains."""

    index: int
    labels: list[int]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


_REGISTRY: dict[str, Callable[..., Any]] = {}


def register_dataset(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn`` as the loader of dataset ``name``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"dataset {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return wrap


def dataset_names() -> list[str]:
    return sorted(_REGISTRY)


def load_dataset(name: str, **kwargs: Any) -> Any:
    """Load dataset ``name`` with loader keyword arguments ``kwargs``."""
    try:
        fn = _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise KeyError(
            f"unknown dataset {name!r}{hint}; registered: {', '.join(dataset_names())}"
        ) from None
    return fn(**kwargs)


def subset(x: np.ndarray, y: np.ndarray, size: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded class-stratified subset of ``size`` rows (all rows when ``size`` is None)."""
    if size is None or size >= len(y):
        return x, y
    rng = np.random.default_rng(seed)
    picks: list[np.ndarray] = []
    labels = np.unique(y)
    per = np.full(len(labels), size // len(labels))
    per[: size - per.sum()] += 1
    for label, k in zip(labels, per):
        idx = np.flatnonzero(y == label)
        picks.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    order = np.sort(np.concatenate(picks))
    return x[order], y[order]
