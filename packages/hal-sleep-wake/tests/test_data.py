"""Data: every dataset through circadian_core.datasets.load_dataset (so a profile swaps stand-ins in from
params.yaml alone), Mammoth's class split, shape harmonization, augmentation on the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circadian_core.config import ConfigError
from circadian_core.datasets import ArrayDataset, dataset_names, register_dataset
from hal_sleep_wake.config import load_config
from hal_sleep_wake.data import Normalizer, augment, load_sequence
from hal_sleep_wake.datasets import permute_pixels

CALLS: list[dict] = []


@pytest.fixture(scope="module", autouse=True)
def stand_in():
    """A CIFAR-shaped stand-in registered under its own name, as the smoke profile's are."""
    if "test-standin-cifar" not in dataset_names():
        @register_dataset("test-standin-cifar")
        def _standin(n_train: int = 40, **kwargs):
            CALLS.append({"n_train": n_train, **kwargs})
            rng = np.random.default_rng(0)
            y_tr, y_te = np.arange(n_train) % 10, np.arange(20) % 10
            x_tr = rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8)
            x_te = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
            return ArrayDataset("test-standin-cifar", x_tr, y_tr, x_te, y_te, [f"c{i}" for i in range(10)])


def test_a_registered_stand_in_is_split_into_mammoths_tasks():
    cfg = load_config({"data": {"sequence": [{"name": "test-standin-cifar", "args": {"n_train": 60}}],
                                "classes_per_task": 2}}).data
    seq = load_sequence(cfg)
    assert CALLS[-1] == {"n_train": 60}  # the args reach the loader
    assert seq.n_tasks == 5 and seq.head_sizes == [2] * 5 and seq.names[1] == "test-standin-cifar 2,3"
    assert seq.item_shape == (3, 32, 32) and [len(y) for y in seq.y_train] == [12] * 5
    for t, y in enumerate(seq.y_train):  # slots: task t owns 2t, 2t + 1
        assert set(y.tolist()) == {2 * t, 2 * t + 1}


def test_unknown_datasets_and_wrong_args_are_config_errors():
    with pytest.raises(ConfigError, match="unknown dataset 'cifar1O'.*did you mean 'cifar10'"):
        load_sequence(load_config({"data": {"sequence": ["cifar1O"]}}).data)
    with pytest.raises(ConfigError, match="does not take the arguments \\['colour'\\]"):
        load_sequence(load_config({"data": {"sequence": [{"name": "split_digits", "args": {"colour": 1}}]}}).data)
    with pytest.raises(ConfigError, match="classes_per_task: 3 does not divide the 10 classes"):
        load_sequence(load_config({"data": {"sequence": ["test-standin-cifar"], "classes_per_task": 3}}).data)


def test_sequences_of_different_shapes_are_harmonized_or_refused():
    mixed = {"sequence": [{"name": "split_digits", "args": {"n_tasks": 2}}, "test-standin-cifar"]}
    with pytest.raises(ConfigError, match="set data.image_size and data.channels"):
        load_sequence(load_config({"data": mixed}).data)
    seq = load_sequence(load_config({"data": {**mixed, "image_size": 32, "channels": 3}}).data)
    assert seq.item_shape == (3, 32, 32) and seq.head_sizes == [5, 5, 10]
    x = seq.x_train[0]
    assert torch.equal(x[:, 0], x[:, 2]) and x[:, :, :12].sum() == 0  # grey repeated; centred: 12 rows of padding


def test_the_seeds_further_datasets_are_registered():
    assert {"mnist", "permuted_mnist", "fashion_mnist", "svhn"} <= set(dataset_names())
    x = np.arange(2 * 9, dtype=np.uint8).reshape(2, 3, 3)
    p = permute_pixels(x, seed=0)
    assert not np.array_equal(p, x) and np.array_equal(np.sort(p.reshape(2, -1)), x.reshape(2, -1))
    assert np.array_equal(permute_pixels(x, seed=0), p)  # one fixed permutation for every image and call


def test_zero_padding_is_black_pixels_and_reflect_mirrors():
    x = torch.ones(4, 1, 4, 4)  # white images in [0, 1]
    g = torch.Generator().manual_seed(0)
    zeros = augment(x, pad=2, flip=False, generator=g, mode="zeros")
    assert zeros.shape == x.shape and zeros.min() == 0.0  # black borders (not the mean colour)
    assert torch.equal(augment(x, pad=2, flip=False, generator=g, mode="reflect"), x)
    norm = Normalizer([0.5], [0.25], 1)
    assert norm(torch.full((1, 1, 1, 1), 255, dtype=torch.uint8)).item() == pytest.approx(2.0)
    assert norm.high.item() == pytest.approx(2.0) and norm.low.item() == pytest.approx(-2.0)


def test_sequence_wide_loader_args_reach_image_datasets_not_task_lists():
    from hal_sleep_wake.config import DatasetSpec
    from hal_sleep_wake.data import loader_args

    cfg = load_config({"data": {"train_size": 500, "test_size": 100, "subset_seed": 3}}).data
    assert loader_args("cifar10", cfg) == {"train_size": 500, "test_size": 100, "subset_seed": 3}
    assert loader_args("split_digits", cfg) == {}  # its own arguments only
    own = DatasetSpec("synthetic-cifar10", {"test_size": 50, "seed": 1})
    assert loader_args(own, cfg) == {"train_size": 500, "test_size": 50, "subset_seed": 3, "seed": 1}
    assert loader_args("cifar10", load_config({}).data) == {}  # nothing set: the loader's defaults
    seq = load_sequence(load_config({"data": {"sequence": ["test-standin-cifar"], "train_size": 30,
                                              "classes_per_task": 5}}).data)
    assert CALLS[-1] == {"n_train": 40, "train_size": 30, "subset_seed": 0}  # the sequence-wide size reached it
    assert seq.n_tasks == 2
