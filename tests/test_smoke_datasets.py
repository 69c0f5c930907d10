"""The smoke profile's CIFAR stand-ins: CIFAR's shape and splits, seeded, flip-safe, not mean colour,
and learnable by a plain fine-tune (>= 90% in one epoch)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from circadian_core.datasets import ArrayDataset, dataset_names, load_dataset
from circadian_core.datasets.synthetic import ORIENTATIONS_DEG, class_attributes


@pytest.mark.parametrize(("name", "classes"), [("synthetic-cifar10", 10), ("synthetic-cifar100", 100)])
def test_stand_ins_have_cifars_shape_and_splits(name, classes):
    assert name in dataset_names()
    d = load_dataset(name, train_size=4 * classes, test_size=2 * classes, subset_seed=0, root="/nonexistent")
    assert isinstance(d, ArrayDataset) and d.name == name and d.num_classes == classes
    assert d.x_train.shape == (4 * classes, 32, 32, 3) and d.x_test.shape == (2 * classes, 32, 32, 3)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int64
    assert np.bincount(d.y_train, minlength=classes).tolist() == [4] * classes  # balanced, like CIFAR
    assert np.bincount(d.y_test, minlength=classes).tolist() == [2] * classes


@pytest.mark.parametrize(("name", "shape", "sizes"), [("synthetic-mnist", (28, 28), (60_000, 10_000)),
                                                     ("synthetic-svhn", (32, 32, 3), (73_257, 26_032))])
def test_other_stand_ins_have_their_sets_shape(name, shape, sizes, monkeypatch):
    import circadian_core.datasets.synthetic as synthetic

    asked = []
    real = synthetic._split

    def small(num_classes, n, *args):  # record the size asked for, generate 30 rows
        asked.append(n)
        return real(num_classes, min(n, 30), *args)

    monkeypatch.setattr(synthetic, "_split", small)
    d = load_dataset(name, train_size=None)  # None: the real set's size
    assert tuple(asked) == sizes
    assert d.x_train.shape[1:] == shape and d.x_train.dtype == np.uint8 and d.num_classes == 10


def test_svhn_stand_in_has_other_classes_than_cifar10s():
    assert not set(class_attributes(20)[10:]) & set(class_attributes(10))


def test_stand_ins_are_seeded():
    a = load_dataset("synthetic-cifar10", train_size=50, test_size=20)
    b = load_dataset("synthetic-cifar10", train_size=50, test_size=20)
    c = load_dataset("synthetic-cifar10", train_size=50, test_size=20, subset_seed=1)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.x_train[:20], a.x_test)  # train and test are different draws


def test_classes_are_distinct_and_flip_safe():
    for n in (10, 100):
        attrs = class_attributes(n)
        assert len(set(attrs)) == n
    ten = class_attributes(10)
    assert min(sum(a != b for a, b in zip(p, q)) for p, q in itertools.combinations(ten, 2)) >= 2
    # a horizontal flip maps orientation t to 180 - t: that must be t itself or no class's orientation
    for t in ORIENTATIONS_DEG:
        mirrored = (180.0 - t) % 180.0
        assert mirrored == t or mirrored not in ORIENTATIONS_DEG


def test_the_class_is_not_in_the_mean_colour():
    """Per-image mean colour (what per-sample normalisation erases) must not predict the class."""
    d = load_dataset("synthetic-cifar10", train_size=2000, test_size=500)
    mean_tr = d.x_train.reshape(len(d.x_train), -1, 3).mean(1)
    mean_te = d.x_test.reshape(len(d.x_test), -1, 3).mean(1)
    centroids = np.stack([mean_tr[d.y_train == k].mean(0) for k in range(10)])
    pred = np.argmin(((mean_te[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == d.y_test).mean() < 0.2  # chance is 0.1


@pytest.mark.slow
def test_a_plain_fine_tune_learns_the_cifar10_stand_in_in_one_epoch():
    """hal's GroupNorm ResNet-18 at a quarter of the paper's width (16, two channels per group as in the
    paper's 64/32), from scratch, with the paper's augmentation (random translation, flips) and wake LR:
    >= 90% test accuracy after one epoch of 150 steps of 32 (the paper's epoch: 195 steps of 256)."""
    import torch

    from hal_sleep_wake.data import augment, to_input
    from hal_sleep_wake.model import build_model

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same result on every machine (and no fight over a shared CPU)
    d = load_dataset("synthetic-cifar10", train_size=4800, test_size=500)
    x = torch.from_numpy(d.x_train).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(d.y_train)
    model = build_model([10], scenario="class", width=16, in_channels=3, cifar_stem=True, norm="group", norm_groups=8)
    opt = torch.optim.AdamW(model.parameters(), lr=0.002)
    g = torch.Generator().manual_seed(0)
    for idx in torch.randperm(len(y), generator=g).split(32):
        loss = torch.nn.functional.cross_entropy(model(augment(to_input(x[idx]), pad=4, flip=True, generator=g)), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        xt = torch.from_numpy(d.x_test).permute(0, 3, 1, 2).contiguous()
        acc = (model(to_input(xt)).argmax(1) == torch.from_numpy(d.y_test)).float().mean().item()
    torch.set_num_threads(threads)
    assert acc >= 0.9
