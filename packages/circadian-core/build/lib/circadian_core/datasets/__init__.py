"""Dataset registry: a name maps to a loader function returning NumPy arrays.

Embedded datasets (Split-Digits) need no network. Downloaded ones (CIFAR-10/100) go through
:func:`circadian_core.datasets.download.fetch`, which checks checksums and fails offline with an
error naming the file to place by hand.
"""

from circadian_core.datasets import cifar as _cifar  # noqa: F401  (registers cifar10/cifar100)
from circadian_core.datasets import digits as _digits  # noqa: F401  (registers digits/split_digits)
from circadian_core.datasets.cifar import load_cifar
from circadian_core.datasets.digits import split_digits
from circadian_core.datasets.download import ChecksumError, DatasetUnavailableError, fetch
from circadian_core.datasets.registry import (
    ArrayDataset,
    Task,
    dataset_names,
    load_dataset,
    register_dataset,
)

__all__ = [
    "ArrayDataset",
    "ChecksumError",
    "DatasetUnavailableError",
    "Task",
    "dataset_names",
    "fetch",
    "load_cifar",
    "load_dataset",
    "register_dataset",
    "split_digits",
]
