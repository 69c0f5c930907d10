"""Task sequences held on the device as uint8 tensors, and airbench-style augmentation on the device.

A sequence is loaded from circadian_core's datasets (:func:`load_sequence`) or from a pipeline
artifact that holds it as one ``.npz`` (:func:`build_artifact`, :func:`read_sequence`): the mini cells
read the artifact, so none of them imports scikit-learn to rebuild Split-Digits.

Labels are remapped to *slots*: the classes of task 0 take slots ``0..n_0-1``, those of task 1 the
next ``n_1``, and so on, so every model outputs one logit per slot and a task is a contiguous block.
Images stay uint8 NCHW on the device; :func:`to_input` normalizes a batch, :func:`augment` draws
random translations (reflect padding) and optional horizontal flips for the whole batch at once.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from circadian_core.config import from_dict
from hal_sleep_wake.config import ConfigError, DataConfig

MEAN, STD = 0.5, 0.25  # fixed normalization of [0, 1] pixels (no statistics of future tasks)


@dataclasses.dataclass
class TaskSequence:
    names: list[str]  # one per task, e.g. "digits 0,1" or "cifar10"
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


def _nchw_uint8(x: np.ndarray) -> torch.Tensor:
    if x.dtype != np.uint8:  # digits: float in [0, 1]
        x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    if x.ndim == 3:  # (N, H, W) grey
        x = x[:, None]
    elif x.shape[-1] in (1, 3):  # NHWC
        x = x.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(x))


def _slots(y: np.ndarray, labels: list[int], offset: int) -> torch.Tensor:
    lookup = np.full(int(max(labels)) + 1, -1, dtype=np.int64)
    lookup[np.asarray(labels)] = np.arange(len(labels)) + offset
    return torch.from_numpy(lookup[y])


def load_sequence(cfg: DataConfig) -> TaskSequence:
    """Load ``cfg.sequence`` into a CPU :class:`TaskSequence` (move it with ``.to(device)``)."""
    from circadian_core.datasets import load_cifar, split_digits

    names, classes, xtr, ytr, xte, yte = [], [], [], [], [], []
    offset = 0

    def add(name: str, labels: list[int], class_names: list[str], x_train, y_train, x_test, y_test) -> None:
        nonlocal offset
        names.append(name)
        classes.append(class_names)
        xtr.append(_nchw_uint8(x_train))
        ytr.append(_slots(y_train, labels, offset))
        xte.append(_nchw_uint8(x_test))
        yte.append(_slots(y_test, labels, offset))
        offset += len(labels)

    for ds in cfg.sequence:
        if ds == "split_digits":
            for task in split_digits(n_tasks=cfg.n_tasks, class_order_seed=cfg.class_order_seed):
                add("digits " + ",".join(map(str, task.labels)), task.labels, [str(c) for c in task.labels],
                    task.x_train, task.y_train, task.x_test, task.y_test)
        elif ds in ("cifar10", "cifar100"):
            d = load_cifar(ds, root=cfg.root, train_size=cfg.train_size, test_size=cfg.test_size,
                           subset_seed=cfg.subset_seed)
            add(ds, list(range(d.num_classes)), d.classes, d.x_train, d.y_train, d.x_test, d.y_test)
        else:
            raise ConfigError(
                f"hal.data.sequence: unknown dataset {ds!r}; use split_digits, cifar10 or cifar100"
            )
    shapes = {tuple(x.shape[1:]) for x in xtr}
    if len(shapes) != 1:
        raise ConfigError(f"hal.data.sequence: tasks have different image shapes {sorted(shapes)}; "
                          "a sequence must share one shape (e.g. cifar10 then cifar100)")
    return TaskSequence(names, classes, xtr, ytr, xte, yte)


SEQUENCE_KEYS = ("sequence", "n_tasks", "class_order_seed", "train_size", "test_size", "subset_seed", "root")


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
    """The CPU :class:`TaskSequence` stored by :func:`build_artifact`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; build it first: python -m pipelines.scripts.build_artifact "
                                f"{path.stem}")
    with np.load(path) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        parts = {part: [torch.from_numpy(z[f"{part}_{t}"]) for t in range(len(meta["names"]))]
                 for part in ("x_train", "y_train", "x_test", "y_test")}
    return TaskSequence(meta["names"], meta["classes"], **parts)


def to_input(x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 NCHW -> normalized float32 (optionally channels_last)."""
    out = (x.float() / 255.0 - MEAN) / STD
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


def augment(x: torch.Tensor, *, pad: int, flip: bool, generator: torch.Generator | None) -> torch.Tensor:
    """Random translation by up to ``pad`` pixels (reflect padding) and optional horizontal flip, per sample.

    One gather for the whole batch of float NCHW inputs (after :func:`to_input`).
    """
    b, c, h, w = x.shape
    dev = x.device
    if pad > 0 and b:
        xp = F.pad(x, (pad, pad, pad, pad), mode="reflect")
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
