"""Dataset registry: a name maps to a loader function returning NumPy arrays.

Embedded datasets (Split-Digits) need no network. Downloaded ones (CIFAR-10/100) go through
:func:`circadian_core.datasets.download.fetch`, which checks checksums and fails offline with an
error naming the file to place by hand. Generated stand-ins of the downloaded ones
(``synthetic-cifar10``, ``synthetic-cifar100``: class-conditional gratings of the same shape and
splits, :mod:`circadian_core.datasets.synthetic`) let the ``smoke`` profile run without network.
"""

from circadian_core.datasets import cifar as _cifar  # noqa: F401  (registers cifar10/cifar100)
from circadian_core.datasets import digits as _digits  # noqa: F401  (registers digits/split_digits)
from circadian_core.datasets import synthetic as _synthetic  # noqa: F401  (registers synthetic-cifar10/100)
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
from circadian_core.datasets.synthetic import synthetic_images

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
    "synthetic_images",
]
