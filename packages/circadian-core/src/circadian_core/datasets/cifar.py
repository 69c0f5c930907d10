"""CIFAR-10 and CIFAR-100 as uint8 NHWC arrays, downloaded with md5 checks.

The archive names, URLs and checksums are torchvision's, and the extracted folder is the same, so a
torchvision download under the same root is reused (and the other way round).
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

from circadian_core.datasets.download import DatasetUnavailableError, data_root, fetch
from circadian_core.datasets.registry import ArrayDataset, register_dataset, subset

_SOURCES = {
    "cifar10": {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "file": "cifar-10-python.tar.gz",
        "md5": "c58f30108f718f92721af3b95e74349a",
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "labels": b"labels",
        "meta": ("batches.meta", b"label_names"),
    },
    "cifar100": {
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "file": "cifar-100-python.tar.gz",
        "md5": "eb9058c3a382ffc7106e4002c42a8d85",
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "labels": b"fine_labels",
        "meta": ("meta", b"fine_label_names"),
    },
}


def _read(folder: Path, names: list[str], label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for name in names:
        with open(folder / name, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch[label_key], dtype=np.int64))
    return np.concatenate(xs).transpose(0, 2, 3, 1).copy(), np.concatenate(ys)


def load_cifar(
    name: str = "cifar10",
    root: str | Path | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    subset_seed: int = 0,
) -> ArrayDataset:
    """CIFAR-10/100 (``name``) with optional seeded class-stratified subsets."""
    if name not in _SOURCES:
        raise KeyError(f"unknown CIFAR variant {name!r}; use 'cifar10' or 'cifar100'")
    src = _SOURCES[name]
    base = data_root(root)
    folder = base / src["folder"]
    if not folder.exists():
        try:
            archive = fetch(src["url"], base / src["file"], src["md5"], algorithm="md5")
        except DatasetUnavailableError as err:
            raise DatasetUnavailableError(
                f"{err} (or place the extracted folder at {folder}; set $CIRCADIAN_DATA to use another "
                f"data folder; without CIFAR, the smoke profile runs on its stand-in synthetic-{name})"
            ) from err
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(base, filter="data")
    x_tr, y_tr = _read(folder, src["train"], src["labels"])
    x_te, y_te = _read(folder, src["test"], src["labels"])
    meta_file, meta_key = src["meta"]
    with open(folder / meta_file, "rb") as fh:
        classes = [c.decode() for c in pickle.load(fh, encoding="bytes")[meta_key]]
    x_tr, y_tr = subset(x_tr, y_tr, train_size, subset_seed)
    x_te, y_te = subset(x_te, y_te, test_size, subset_seed + 1)
    return ArrayDataset(name, x_tr, y_tr, x_te, y_te, classes)


@register_dataset("cifar10")
def cifar10(**kwargs: object) -> ArrayDataset:
    return load_cifar("cifar10", **kwargs)  # type: ignore[arg-type]


@register_dataset("cifar100")
def cifar100(**kwargs: object) -> ArrayDataset:
    return load_cifar("cifar100", **kwargs)  # type: ignore[arg-type]
