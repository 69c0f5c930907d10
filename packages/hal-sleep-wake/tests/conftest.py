"""Small synthetic task sequences and configs, so the suite runs in seconds on a CPU."""

from __future__ import annotations

import pytest
import torch

from hal_sleep_wake.config import load_config
from hal_sleep_wake.data import TaskSequence


def synthetic_sequence(n_tasks: int = 2, classes: int = 2, n_train: int = 48, n_test: int = 24, size: int = 8,
                       channels: int = 1, seed: int = 0) -> TaskSequence:
    """Each class is a fixed random pattern plus noise (uint8), so a few steps learn something."""
    g = torch.Generator().manual_seed(seed)
    names, cls, xtr, ytr, xte, yte = [], [], [], [], [], []
    for t in range(n_tasks):
        patterns = torch.rand(classes, channels, size, size, generator=g) * 255
        def draw(n, t=t, patterns=patterns):
            y = torch.arange(n) % classes
            x = patterns[y] * 0.7 + torch.rand(n, channels, size, size, generator=g) * 255 * 0.3
            return x.round().clamp(0, 255).to(torch.uint8), y + t * classes
        a, b = draw(n_train)
        c, d = draw(n_test)
        names.append(f"synthetic {t}")
        cls.append([f"{t}.{k}" for k in range(classes)])
        xtr.append(a), ytr.append(b), xte.append(c), yte.append(d)
    return TaskSequence(names, cls, xtr, ytr, xte, yte)


TINY = {
    "model": {"width": 4, "norm_groups": 2},
    "lora": {"rank": 2, "alpha": 4.0},
    "memory": {"capacity": 32, "replay_n": 8},
    "wake": {"optimizer": "adamw", "lr": 0.01, "batch_size": 16, "epochs": 1},
    "rem": {"steps": 2, "batch_size": 8, "excite_steps": 1, "ce_batch": 8},
    "ewc": {"fisher_samples": 16, "fisher_batch": 8},
    "lwf": {"warmup_epochs": 1},
}


@pytest.fixture
def seq() -> TaskSequence:
    return synthetic_sequence()


@pytest.fixture
def seq3() -> TaskSequence:
    return synthetic_sequence(n_tasks=3)


@pytest.fixture
def tiny_dict():
    return {k: dict(v) for k, v in TINY.items()}


@pytest.fixture
def tiny_cfg():
    def make(**over):
        from circadian_core.config import deep_merge

        return load_config(deep_merge(TINY, over))

    return make


@pytest.fixture(autouse=True)
def _one_thread():
    """Like a DAG cell: one CPU thread (also keeps the suite quick on a shared machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
