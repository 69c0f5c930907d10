"""Generated stand-ins for CIFAR-10/100: class-conditional spatial patterns, no download.

The ``smoke`` profile runs the paper's code paths where CIFAR cannot be had (a machine without
network). Each class is a pattern of stripes (a square-wave grating) with its own orientation,
stripe period and stripe colour (the channels the stripes modulate, with signs); every image draws a
random phase (a random shift of the pattern), contrast, background colour, small orientation and
period jitter, and pixel noise. So:

* the class lives in spatial structure, not in mean colour: the background colour is a random
  nuisance, and per-sample normalisation (GroupNorm, standardisation) keeps the signal (stripes of
  a colour are edges in those channels; mean-colour blobs were erased by GroupNorm);
* it survives the paper's augmentation: a random translation is a phase change, and orientations
  lie in [0, 90] degrees, so a horizontal flip (angle -> 180 - angle) never turns one class into
  another; colour inversion (the plastic study's storm, ``255 - x``) is a phase shift too;
* a plain fine-tune learns it: hal's GroupNorm ResNet-18 at width 16 reaches >= 90% test accuracy
  on ``synthetic-cifar10`` in one epoch of 150 steps of 32 (tests/test_smoke_datasets.py).

Also ``synthetic-mnist`` (28x28 grey, orientation and period only) and ``synthetic-svhn`` (32x32x3, ten
other patterns) for sequences that name MNIST-like sets or SVHN. Loaders take the real loaders' keyword arguments (``root``, ``train_size``, ``test_size``,
``subset_seed``), so a config swaps ``cifar10`` for ``synthetic-cifar10`` and nothing else.
Arrays are uint8 NHWC (N, 32, 32, 3) like :func:`circadian_core.datasets.load_cifar`; the default
sizes are CIFAR's (50,000 train, 10,000 test), generated in a few seconds. Same arguments, same
arrays, bit for bit.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import numpy as np

from circadian_core.datasets.registry import ArrayDataset, register_dataset

ORIENTATIONS_DEG = (0.0, 22.5, 45.0, 67.5, 90.0)  # flip-safe: a mirrored angle is no other class's
CYCLES = (1.5, 2.5, 3.5, 5.0)  # stripe periods per image width
# the stripes' colour: the channels they modulate, with signs (-1: that channel dark where the others are bright)
COLOURS = ((1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1), (1, 0, 1), (1, 1, 1), (1, -1, 0), (0, 1, -1), (-1, 0, 1))
_CHUNK = 4096  # images generated at once (bounds the float32 working set to ~50 MB)


GREY = COLOURS.index((1, 1, 1))  # grey images: stripes in every channel, then one channel kept


@functools.cache
def class_attributes(num_classes: int, grey: bool = False) -> tuple[tuple[int, int, int], ...]:
    """(orientation, cycles, colour) indices of each class, as far apart as the grid allows.

    A deterministic greedy choice from the grid that maximises the smallest number of differing
    attributes between any two classes (the 10 classes of ``synthetic-cifar10`` differ in colour and
    in at least one more attribute). ``grey``: orientation and period only (20 classes at most).
    """
    colours = [GREY] if grey else range(len(COLOURS))
    most = len(ORIENTATIONS_DEG) * len(CYCLES) * len(colours)
    if not 1 <= num_classes <= most:
        raise ValueError(f"synthetic images: num_classes must be in 1..{most}{' (grey)' if grey else ''}, got {num_classes}")
    grid = np.asarray(list(itertools.product(range(len(ORIENTATIONS_DEG)), range(len(CYCLES)), colours)))
    chosen = [0]
    dists = (grid != grid[0]).sum(1)[:, None]  # (grid, chosen): attributes that differ
    while len(chosen) < num_classes:
        score = dists.min(1) * 10_000 + dists.sum(1)  # the smallest distance first, then the total
        score[chosen] = -1
        best = int(np.argmax(score))  # argmax keeps the first of equals: deterministic
        chosen.append(best)
        dists = np.concatenate([dists, (grid != grid[best]).sum(1)[:, None]], axis=1)
    return tuple(tuple(int(v) for v in grid[i]) for i in chosen)


def _render(labels: np.ndarray, attrs: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """uint8 (N, size, size, 3) stripe patterns of ``labels`` (rows of ``attrs``: angle, cycles, colour)."""
    n = len(labels)
    angle = np.deg2rad(np.asarray(ORIENTATIONS_DEG)[attrs[labels, 0]] + rng.uniform(-4.0, 4.0, n))
    cycles = np.asarray(CYCLES)[attrs[labels, 1]] * rng.uniform(0.95, 1.05, n)
    colour = np.asarray(COLOURS, dtype=np.float32)[attrs[labels, 2]]  # (N, 3)
    phase = rng.uniform(0.0, 2 * np.pi, n)  # a random shift of the pattern
    contrast = rng.uniform(50.0, 80.0, n).astype(np.float32)
    background = rng.uniform(80.0, 176.0, (n, 3)).astype(np.float32)  # random mean colour: a nuisance
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    k = (2 * np.pi * cycles)[:, None, None]
    arg = k * (np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy) + phase[:, None, None]
    wave = np.sign(np.cos(arg.astype(np.float32))) * contrast[:, None, None]  # stripes, (N, H, W)
    img = background[:, None, None, :] + wave[..., None] * colour[:, None, None, :]
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(12.0)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _split(num_classes: int, n: int, rng: np.random.Generator, size: int, grey: bool,
           offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(n, dtype=np.int64) % num_classes  # balanced, like CIFAR
    rng.shuffle(labels)
    attrs = np.asarray(class_attributes(num_classes + offset, grey)[offset:])
    x = np.empty((n, size, size) if grey else (n, size, size, 3), dtype=np.uint8)
    for i in range(0, n, _CHUNK):
        rgb = _render(labels[i : i + _CHUNK], attrs, rng, size)
        x[i : i + _CHUNK] = rgb[..., 0] if grey else rgb
    return x, labels


def synthetic_images(
    num_classes: int,
    *,
    name: str = "synthetic",
    train_size: int | None = 50_000,
    test_size: int | None = 10_000,
    subset_seed: int = 0,
    seed: int = 0,
    image_size: int = 32,
    channels: int = 3,
    class_offset: int = 0,
    root: str | Path | None = None,
) -> ArrayDataset:
    """A seeded class-balanced train/test split of ``num_classes`` stripe-pattern classes (uint8 NHWC).

    ``train_size``/``test_size`` None mean CIFAR's 50,000/10,000. ``seed`` picks the generated
    world, ``subset_seed`` the draw from it (the real loaders' subset knob). ``channels`` 3 gives
    uint8 (N, H, W, 3), 1 gives grey (N, H, W) as MNIST-like loaders do. ``class_offset`` skips the
    first patterns (another set of classes than a stand-in with offset 0). ``root`` is accepted and
    ignored: nothing is read or written.
    """
    del root  # generated, not downloaded
    n_train = 50_000 if train_size is None else int(train_size)
    n_test = 10_000 if test_size is None else int(test_size)
    if n_train < 1 or n_test < 1 or image_size < 4 or channels not in (1, 3):
        raise ValueError(f"{name}: train_size and test_size must be >= 1, image_size >= 4 and channels 1 or 3, "
                         f"got {n_train}, {n_test}, {image_size}, {channels}")
    grey = channels == 1
    x_tr, y_tr = _split(num_classes, n_train, np.random.default_rng([seed, subset_seed, 0]), image_size, grey,
                        class_offset)
    x_te, y_te = _split(num_classes, n_test, np.random.default_rng([seed, subset_seed, 1]), image_size, grey,
                        class_offset)
    classes = [f"stripes{k:03d}" for k in range(num_classes)]
    return ArrayDataset(name, x_tr, y_tr, x_te, y_te, classes)


@register_dataset("synthetic-cifar10")
def synthetic_cifar10(**kwargs: object) -> ArrayDataset:
    """CIFAR-10's shape and class count (10 classes, 32x32x3 uint8, 50,000/10,000)."""
    return synthetic_images(10, name="synthetic-cifar10", **kwargs)  # type: ignore[arg-type]


@register_dataset("synthetic-cifar100")
def synthetic_cifar100(**kwargs: object) -> ArrayDataset:
    """CIFAR-100's shape and class count (100 classes, 32x32x3 uint8, 50,000/10,000)."""
    return synthetic_images(100, name="synthetic-cifar100", **kwargs)  # type: ignore[arg-type]


def _sized(kwargs: dict[str, object], train: int, test: int) -> dict[str, object]:
    """``kwargs`` with the real set's sizes where they are missing or None (None means "all")."""
    out = dict(kwargs)
    for key, size in (("train_size", train), ("test_size", test)):
        if out.get(key) is None:
            out[key] = size
    return out


@register_dataset("synthetic-mnist")
def synthetic_mnist(**kwargs: object) -> ArrayDataset:
    """MNIST's shape (10 classes, 28x28 grey uint8, 60,000/10,000): the stand-in of MNIST-like sets."""
    return synthetic_images(10, name="synthetic-mnist", image_size=28, channels=1,
                            **_sized(kwargs, 60_000, 10_000))  # type: ignore[arg-type]


@register_dataset("synthetic-svhn")
def synthetic_svhn(**kwargs: object) -> ArrayDataset:
    """SVHN's shape (10 classes, 32x32x3 uint8, 73,257/26,032); its 10 patterns are not synthetic-cifar10's."""
    return synthetic_images(10, name="synthetic-svhn", class_offset=10,
                            **_sized(kwargs, 73_257, 26_032))  # type: ignore[arg-type]
