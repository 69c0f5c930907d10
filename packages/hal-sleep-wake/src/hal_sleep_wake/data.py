"""Task sequences held on the device as uint8 tensors, and airbench-style augmentation on the device.

Every dataset comes from ``circadian_core.datasets.load_dataset(name, **args)``, so a profile swaps
stand-ins in (``synthetic-cifar10`` for ``cifar10``) from params.yaml alone. A loader that returns a
task list (``split_digits``) gives its tasks; any other dataset is one task, or several with
``classes_per_task`` (Seq-CIFAR-10: classes 0,1 | 2,3 | ... in the natural order, as Mammoth).
The hal package registers the seed's further datasets there when absent (:mod:`hal_sleep_wake.datasets`).

A sequence can also be stored as one ``.npz`` pipeline artifact (:func:`build_artifact`,
:func:`read_sequence`), so the mini cells need no scikit-learn. Labels are remapped to *slots*: the
classes of task 0 take slots ``0..n_0-1``, those of task 1 the next ``n_1``, and so on, so every model
outputs one logit per slot and a task is a contiguous block. Images stay uint8 NCHW on the device;
:class:`Normalizer` turns a batch into network inputs and :func:`augment` draws random translations
(reflect or zero padding) and optional horizontal flips for the whole batch at once.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from circadian_core.config import ConfigError, from_dict
from hal_sleep_wake.config import DataConfig, DatasetSpec, dataset_name


@dataclasses.dataclass
class TaskSequence:
    names: list[str]  # one per task, e.g. "digits 0,1" or "cifar10 2,3"
    classes: list[list[str]]  # class names per task, in slot order
    x_train: list[torch.Tensor]  # uint8 (N, C, H, W) on the device
    y_train: list[torch.Tensor]  # slots (int64)
    x_test: list[torch.Tensor]
    y_test: list[torch.Tensor]

    @property
    def n_tasks(self) -> int:
        return len(self.names)

    @property
    def head_sizes(self) -> list[int]:
        return [len(c) for c in self.classes]

    @property
    def n_classes(self) -> int:
        return sum(self.head_sizes)

    @property
    def item_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train[0].shape[1:])  # type: ignore[return-value]

    @property
    def in_channels(self) -> int:
        return self.item_shape[0]

    def task_mask(self) -> torch.Tensor:
        """(T, C) bool: row t marks task t's slots."""
        sizes = self.head_sizes
        owner = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
        return owner[None, :] == torch.arange(len(sizes))[:, None]

    def seen_mask(self) -> torch.Tensor:
        """(T, C) bool: row t marks the slots of tasks 0..t."""
        return self.task_mask().int().cumsum(0).bool()

    def to(self, device: torch.device | str) -> TaskSequence:
        move = lambda ts: [t.to(device) for t in ts]  # noqa: E731
        return dataclasses.replace(
            self, x_train=move(self.x_train), y_train=move(self.y_train),
            x_test=move(self.x_test), y_test=move(self.y_test),
        )


# ---- loading ------------------------------------------------------------------------------------
def _nchw_uint8(x: np.ndarray) -> torch.Tensor:
    if x.dtype != np.uint8:  # digits: float in [0, 1]
        x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    if x.ndim == 3:  # (N, H, W) grey
        x = x[:, None]
    elif x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):  # NHWC
        x = x.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(x))


def _shape(x: torch.Tensor, cfg: DataConfig) -> torch.Tensor:
    """Grey -> ``channels`` by repetition; zero-pad (centred) to ``image_size``."""
    if cfg.channels is not None and x.shape[1] != cfg.channels:
        if x.shape[1] != 1:
            raise ConfigError(f"hal.data.channels: cannot turn {x.shape[1]}-channel images into {cfg.channels}")
        x = x.expand(-1, cfg.channels, -1, -1).contiguous()
    if cfg.image_size is not None and x.shape[-1] != cfg.image_size:
        ph, pw = cfg.image_size - x.shape[-2], cfg.image_size - x.shape[-1]
        if ph < 0 or pw < 0:
            raise ConfigError(f"hal.data.image_size: {cfg.image_size} is smaller than the images "
                              f"({x.shape[-2]}x{x.shape[-1]}); images are padded, never cropped")
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
    return x


def _slots(y: np.ndarray, labels: list[int], offset: int) -> torch.Tensor:
    lookup = np.full(int(max(max(labels), int(y.max()) if len(y) else 0)) + 1, -1, dtype=np.int64)
    lookup[np.asarray(labels)] = np.arange(len(labels)) + offset
    return torch.from_numpy(lookup[y])


TASK_LISTS = ("split_digits",)  # loaders that return tasks, not one image dataset


def loader_args(entry: str | DatasetSpec, cfg: DataConfig) -> dict[str, Any]:
    """The keywords ``load_dataset`` gets for ``entry``: the sequence-wide ones that are set, then its own."""
    name = dataset_name(entry)
    shared: dict[str, Any] = {}
    if name not in TASK_LISTS:
        shared = {k: getattr(cfg, k) for k in ("train_size", "test_size", "root") if getattr(cfg, k) is not None}
        if cfg.train_size is not None or cfg.test_size is not None:
            shared["subset_seed"] = cfg.subset_seed
    return {**shared, **({} if isinstance(entry, str) else entry.args)}


def _load(entry: str | DatasetSpec, cfg: DataConfig) -> Any:
    import hal_sleep_wake.datasets  # noqa: F401  (registers the seed's further datasets when absent)
    from circadian_core.datasets import load_dataset

    name = dataset_name(entry)
    args = loader_args(entry, cfg)
    try:
        return load_dataset(name, **args)
    except KeyError as err:
        raise ConfigError(f"hal.data.sequence: {err.args[0]}") from None
    except TypeError as err:
        raise ConfigError(f"hal.data.sequence: dataset {name!r} does not take the arguments {sorted(args)} "
                          f"({err}); fix its args in params.yaml") from None


def load_sequence(cfg: DataConfig) -> TaskSequence:
    """Load ``cfg.sequence`` into a CPU :class:`TaskSequence` (move it with ``.to(device)``)."""
    names, classes, xtr, ytr, xte, yte = [], [], [], [], [], []
    offset = 0

    def add(name: str, labels: list[int], class_names: list[str], x_train, y_train, x_test, y_test) -> None:
        nonlocal offset
        tr, te = np.isin(y_train, labels), np.isin(y_test, labels)
        names.append(name)
        classes.append(class_names)
        xtr.append(_shape(_nchw_uint8(x_train[tr]), cfg))
        ytr.append(_slots(y_train[tr], labels, offset))
        xte.append(_shape(_nchw_uint8(x_test[te]), cfg))
        yte.append(_slots(y_test[te], labels, offset))
        offset += len(labels)

    for entry in cfg.sequence:
        name = dataset_name(entry)
        data = _load(entry, cfg)
        if isinstance(data, list):  # a task list (split_digits): tasks as the loader made them
            short = "digits" if name == "split_digits" else name
            for task in data:
                add(f"{short} " + ",".join(map(str, task.labels)), list(task.labels), [str(c) for c in task.labels],
                    task.x_train, task.y_train, task.x_test, task.y_test)
            continue
        labels = list(range(data.num_classes))
        k = cfg.classes_per_task or len(labels)
        if len(labels) % k:
            raise ConfigError(f"hal.data.classes_per_task: {k} does not divide the {len(labels)} classes of {name!r}")
        for s in range(0, len(labels), k):
            part = labels[s : s + k]
            label = name if k == len(labels) else f"{name} " + ",".join(map(str, part))
            add(label, part, [data.classes[c] for c in part], data.x_train, data.y_train, data.x_test, data.y_test)
    shapes = {tuple(x.shape[1:]) for x in xtr}
    if len(shapes) != 1:
        raise ConfigError(f"hal.data.sequence: tasks have different image shapes {sorted(shapes)}; set "
                          "data.image_size and data.channels so they share one (e.g. 32 and 3)")
    return TaskSequence(names, classes, xtr, ytr, xte, yte)


# ---- the pipeline artifact ----------------------------------------------------------------------
SEQUENCE_KEYS = ("sequence", "classes_per_task", "image_size", "channels", "train_size", "test_size", "subset_seed",
                 "root")


def build_artifact(config: dict[str, Any], *, out: Path, device: str = "cpu",
                   artifacts: dict[str, Path] | None = None) -> None:
    """Pipeline artifact: the task sequence of ``config`` (the sequence keys of ``data``) as one .npz."""
    unknown = sorted(set(config) - set(SEQUENCE_KEYS))
    if unknown:
        raise ConfigError(f"hal data artifact: unknown key {unknown[0]!r}; valid keys are: {', '.join(SEQUENCE_KEYS)}")
    save_sequence(load_sequence(from_dict(DataConfig, config, where="hal data artifact")), out, spec=config)


def save_sequence(seq: TaskSequence, out: str | Path, spec: dict[str, Any] | None = None) -> None:
    """Write ``seq`` (CPU tensors) as one .npz that :func:`read_sequence` reads back."""
    arrays = {}
    for t in range(seq.n_tasks):
        for part in ("x_train", "y_train", "x_test", "y_test"):
            arrays[f"{part}_{t}"] = getattr(seq, part)[t].cpu().numpy()
    meta = {"names": seq.names, "classes": seq.classes, "spec": dict(spec or {})}
    with open(out, "wb") as fh:  # a file object: numpy must not append ".npz" to the temporary name
        np.savez(fh, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)


def read_sequence(path: str | Path) -> TaskSequence:
    """The CPU :class:`TaskSequence` stored by :func:`build_artifact`; one error naming the fix otherwise."""
    path = Path(path)
    rebuild = f"delete it and rebuild it: python -m pipelines.scripts.build_artifact {path.stem}"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; build it first: python -m pipelines.scripts.build_artifact "
                                f"{path.stem}")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            parts = {part: [torch.from_numpy(z[f"{part}_{t}"]) for t in range(len(meta["names"]))]
                     for part in ("x_train", "y_train", "x_test", "y_test")}
    except (zipfile.BadZipFile, ValueError, OSError, KeyError, EOFError, json.JSONDecodeError,
            UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not a readable task-sequence artifact ({type(err).__name__}); {rebuild}") from None
    return TaskSequence(meta["names"], meta["classes"], **parts)


# ---- inputs and augmentation --------------------------------------------------------------------
class Normalizer:
    """uint8 NCHW -> normalized float32, per-channel ``mean`` / ``std`` of [0, 1] pixels."""

    def __init__(self, mean: list[float], std: list[float], channels: int, device: torch.device | str = "cpu"):
        if len(mean) not in (1, channels):
            raise ConfigError(f"hal.data.mean: {len(mean)} values for {channels}-channel images; give 1 or {channels}")
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(shape)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(shape)
        self.low = (0.0 - self.mean) / self.std  # the valid input range, per channel
        self.high = (1.0 - self.mean) / self.std

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> network inputs."""
        return self.from_unit(x.float() / 255.0)

    def from_unit(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] float images (e.g. augmented) -> network inputs."""
        return (x - self.mean) / self.std


def to_input(x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 NCHW -> float32 inputs with the config's default normalization (mean 0.5, std 0.25 of [0, 1] pixels)."""
    out = (x.float() / 255.0 - 0.5) / 0.25
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


def augment(x: torch.Tensor, *, pad: int, flip: bool, generator: torch.Generator | None,
            mode: str = "reflect") -> torch.Tensor:
    """Random translation by up to ``pad`` pixels and optional horizontal flip, per sample.

    One gather for the whole batch of float NCHW images in [0, 1] (augment before normalizing, so
    ``mode="zeros"`` pads with black pixels, as torchvision's ``RandomCrop(padding=p)`` does).
    """
    b, c, h, w = x.shape
    dev = x.device
    if pad > 0 and b:
        xp = F.pad(x, (pad, pad, pad, pad), mode="reflect" if mode == "reflect" else "constant")
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=dev)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=dev)
        rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :]
        bi = torch.arange(b, device=dev)[:, None, None, None]
        ci = torch.arange(c, device=dev)[None, :, None, None]
        x = xp[bi, ci, rows, cols]
    if flip and b:
        m = torch.rand(b, generator=generator, device=dev) < 0.5
        x = torch.where(m[:, None, None, None], x.flip(3), x)
    return x
