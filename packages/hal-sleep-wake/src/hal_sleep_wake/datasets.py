"""The HAL seed's further datasets (its section 3.1: PermutedMNIST, FashionMNIST, SVHN) via torchvision.

Registered in ``circadian_core.datasets`` under ``mnist``, ``permuted_mnist``, ``fashion_mnist`` and
``svhn`` - each only if nobody registered that name first, so a shared loader in circadian_core wins
once one exists. torchvision downloads and checks its own archives; offline, or when a download
fails, the error names the folder to place the files in by hand. Images stay uint8 (MNIST-like:
(N, 28, 28) grey; SVHN: NHWC colour); ``data.image_size`` / ``data.channels`` harmonize a sequence.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from circadian_core.datasets import ArrayDataset, DatasetUnavailableError, dataset_names, register_dataset
from circadian_core.datasets.download import data_root
from circadian_core.datasets.registry import subset

_SOURCES = {  # registry name -> torchvision class, its folder under the data root
    "mnist": ("MNIST", "MNIST"),
    "fashion_mnist": ("FashionMNIST", "FashionMNIST"),
    "svhn": ("SVHN", "SVHN"),
}


def _torchvision(name: str, root: str | Path | None) -> tuple[Any, Any]:
    import torchvision.datasets as tvd

    cls_name, folder = _SOURCES[name]
    base = data_root(root)
    cls = getattr(tvd, cls_name)
    offline = os.environ.get("CIRCADIAN_OFFLINE") == "1"
    try:
        if cls_name == "SVHN":
            return (cls(str(base / folder), split="train", download=not offline),
                    cls(str(base / folder), split="test", download=not offline))
        return cls(str(base), train=True, download=not offline), cls(str(base), train=False, download=not offline)
    except (RuntimeError, OSError) as err:  # torchvision: "Dataset not found", URLError, checksum failures
        raise DatasetUnavailableError(
            f"{name}: not under {base} and could not be downloaded ({err}); on a machine with network access "
            f"run torchvision.datasets.{cls_name}({str(base)!r}, download=True) and copy {base / folder} here, "
            "then rerun") from None


def _arrays(ds: Any) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(ds, "labels"):  # SVHN: data (N, 3, 32, 32), labels
        return np.asarray(ds.data, dtype=np.uint8).transpose(0, 2, 3, 1), np.asarray(ds.labels, dtype=np.int64)
    return np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64)


def load_torchvision(name: str, root: str | Path | None = None, train_size: int | None = None,
                     test_size: int | None = None, subset_seed: int = 0) -> ArrayDataset:
    """MNIST, FashionMNIST or SVHN as uint8 arrays, with optional seeded class-stratified subsets."""
    train, test = _torchvision(name, root)
    x_tr, y_tr = _arrays(train)
    x_te, y_te = _arrays(test)
    x_tr, y_tr = subset(x_tr, y_tr, train_size, subset_seed)
    x_te, y_te = subset(x_te, y_te, test_size, subset_seed + 1)
    classes = [str(c) for c in getattr(train, "classes", None) or range(10)]
    return ArrayDataset(name, x_tr, y_tr, x_te, y_te, classes)


def permute_pixels(x: np.ndarray, seed: int) -> np.ndarray:
    """(N, H, W) images with one fixed pixel permutation drawn from ``seed`` (PermutedMNIST)."""
    n, h, w = x.shape
    perm = np.random.default_rng(seed).permutation(h * w)
    return x.reshape(n, h * w)[:, perm].reshape(n, h, w)


def permuted_mnist(permutation_seed: int = 0, **kwargs: Any) -> ArrayDataset:
    d = load_torchvision("mnist", **kwargs)
    return ArrayDataset("permuted_mnist", permute_pixels(d.x_train, permutation_seed),
                        d.y_train, permute_pixels(d.x_test, permutation_seed), d.y_test, d.classes)


def _register() -> None:
    loaders = {name: (lambda name=name, **kw: load_torchvision(name, **kw)) for name in _SOURCES}
    loaders["permuted_mnist"] = permuted_mnist
    for name, fn in loaders.items():
        if name not in dataset_names():
            register_dataset(name)(fn)


_register()
