"""Scenarios as strategy objects: which head, which logits a loss sees, which accuracy matrices a run records.

* ``task`` - task-incremental: one head per task; loss and prediction use a sample's own task block.
* ``class`` - class-incremental: one shared head; the logits of classes not seen yet are masked in
  training and testing.
* ``one-head`` - Mammoth's protocol: one shared head trained over all its logits (nothing masked);
  the same run is tested twice, class-incremental (argmax over all classes) and task-incremental
  (argmax within the sample's task block, Mammoth's "masked single head").

A scenario records one or more *views* (``task``, ``class``): one accuracy matrix each.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from hal_sleep_wake.config import SCENARIO_NAMES, SCENARIO_VIEWS


class Scenario:
    name: ClassVar[str]
    shared_head: ClassVar[bool]
    views: ClassVar[tuple[str, ...]]

    def __init__(self, task_mask: torch.Tensor, seen_mask: torch.Tensor) -> None:
        self.task_mask, self.seen_mask = task_mask, seen_mask  # (T, C) on the device

    def train_mask(self, tasks: torch.Tensor, current: int) -> torch.Tensor:
        """(B, C) logits a training loss may use for samples of ``tasks`` while learning task ``current``."""
        raise NotImplementedError

    def eval_mask(self, view: str, tasks: torch.Tensor, current: int) -> torch.Tensor:
        """(B, C) logits that compete in the ``view`` accuracy after task ``current``."""
        if view == "task":
            return self.task_mask[tasks]
        return self.seen_mask[current].expand(len(tasks), -1)

    def known_mask(self, tasks: torch.Tensor, upto: int) -> torch.Tensor:
        """(B, C) logits of a model trained on tasks ``0..upto`` (what a saved teacher can speak for)."""
        if not self.shared_head:
            return self.task_mask[tasks]
        return self.seen_mask[max(upto, 0)].expand(len(tasks), -1)


class TaskIncremental(Scenario):
    name, shared_head, views = "task", False, SCENARIO_VIEWS["task"]

    def train_mask(self, tasks: torch.Tensor, current: int) -> torch.Tensor:
        return self.task_mask[tasks]


class ClassIncremental(Scenario):
    name, shared_head, views = "class", True, SCENARIO_VIEWS["class"]

    def train_mask(self, tasks: torch.Tensor, current: int) -> torch.Tensor:
        return self.seen_mask[current].expand(len(tasks), -1)


class OneHead(Scenario):
    name, shared_head, views = "one-head", True, SCENARIO_VIEWS["one-head"]

    def train_mask(self, tasks: torch.Tensor, current: int) -> torch.Tensor:
        return torch.ones(len(tasks), self.task_mask.shape[1], dtype=torch.bool, device=tasks.device)

    def eval_mask(self, view: str, tasks: torch.Tensor, current: int) -> torch.Tensor:
        if view == "task":
            return self.task_mask[tasks]
        return torch.ones(len(tasks), self.task_mask.shape[1], dtype=torch.bool, device=tasks.device)


SCENARIOS: dict[str, type[Scenario]] = {cls.name: cls for cls in (TaskIncremental, ClassIncremental, OneHead)}
__all__ = ["SCENARIOS", "SCENARIO_NAMES", "ClassIncremental", "OneHead", "Scenario", "TaskIncremental"]
