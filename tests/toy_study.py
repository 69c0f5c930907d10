"""A real but tiny study for the workflow tests: nearest-class-mean on Split-Digits, task by task.

It exercises the whole record -> aggregate -> paper path in seconds, without the heavy packages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from circadian_core.config import bounded
from circadian_core.contract import Contract, Metric
from circadian_core.datasets import split_digits
from circadian_core.metrics import accuracy_matrix_summary
from circadian_core.record import StudyResult


@dataclass
class ToyConfig:
    shrink: float = bounded(0.0, low=0.0, high=1.0)  # pull class means toward the global mean (0 = plain nearest mean)
    n_tasks: int = bounded(5, low=1, high=10)


CONTRACT = Contract(
    "toy",
    version=1,
    settings=ToyConfig,
    metrics=(
        Metric("acc", "average accuracy after the last task (GEM)", higher_is_better=True),
        Metric("bwt", "backward transfer (GEM)", higher_is_better=True),
        Metric("forgetting", "average forgetting (Chaudhry et al. 2018)", higher_is_better=False),
    ),
)


def run(config: dict, *, seed: int, device: str, workdir: Path | None, artifacts: dict) -> StudyResult:
    cfg = CONTRACT.settings_of(config, where="toy")
    tasks = split_digits(n_tasks=cfg.n_tasks, class_order_seed=seed)
    means: dict[int, np.ndarray] = {}
    R = np.zeros((len(tasks), len(tasks)))
    for i, task in enumerate(tasks):
        x = task.x_train.reshape(len(task.x_train), -1)
        center = x.mean(0)
        for label in task.labels:
            m = x[task.y_train == label].mean(0)
            means[label] = (1 - cfg.shrink) * m + cfg.shrink * center
        labels = np.array(sorted(means))
        table = np.stack([means[k] for k in labels])
        for j, t in enumerate(tasks):
            xt = t.x_test.reshape(len(t.x_test), -1)
            pred = labels[np.argmin(((xt[:, None, :] - table[None]) ** 2).sum(-1), axis=1)]
            R[i, j] = float((pred == t.y_test).mean())
    return StudyResult(metrics=accuracy_matrix_summary(R), history={"acc_after_task": R[:, 0].tolist()}, info={"R": R})
