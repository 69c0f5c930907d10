"""PlasticTrainer: run a learner through a curriculum of phases and record what happened, step by step.

A learner is anything with the brains' interface (:class:`Learner`): ``train_step(x, y, mode)``
returning at least ``acc_before`` (the batch accuracy measured *before* the step's update, i.e.
prequential accuracy), ``predict``, ``end_phase(consolidate)``, ``step_stats``, ``sparsity`` and
``core_snapshot``/``core_drift``; optionally ``eval_views()`` (name -> predict function, each
also scored on every eval set as ``<set>@<name>``). :class:`PlasticBrain`, :class:`TriarchicBrain` and
:class:`NaiveLinearHead` all are.

:class:`TrainingHistory` keeps, per step: the phase, the accuracy before the update, memory fill,
per-layer statistics and context energy (whatever ``step_stats`` reports); per evaluation (every
``eval_every`` steps and at the end of each phase): the accuracy on each held-out eval set; per
phase: its steps, mode, core drift and wall time. Batch order comes from ``seed`` alone, so the
same seed gives the same history.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
import torch

from circadian_vision.plastic.block import MODES

Data = tuple[torch.Tensor, torch.Tensor]


class Learner(Protocol):
    def train_step(self, x: torch.Tensor, y: torch.Tensor, mode: str = "plastic") -> dict[str, float]: ...
    def predict(self, x: torch.Tensor) -> torch.Tensor: ...
    def end_phase(self, consolidate: bool) -> dict[str, float]: ...
    def step_stats(self) -> dict[str, float]: ...
    def sparsity(self) -> float: ...
    def core_snapshot(self) -> Any: ...
    def core_drift(self, snapshot: Any) -> float: ...


@dataclasses.dataclass
class PhaseConfig:
    """One phase of a curriculum: what to train on, for how long, in which mode."""

    name: str
    data: Data  # training inputs (features, or images with the trainer's ``featurize``) and labels
    steps: int | None = None  # minibatch steps; None: ``epochs`` passes over ``data``
    epochs: float = 1.0
    batch_size: int = 32
    mode: str = "plastic"  # plastic | panic
    consolidate_after: bool = False
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None  # per raw batch (e.g. invert colours)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"phase {self.name!r}: unknown mode {self.mode!r}; use one of {', '.join(MODES)}")
        if len(self.data) != 2 or len(self.data[0]) != len(self.data[1]):
            raise ValueError(f"phase {self.name!r}: data must be (inputs, labels) of equal length")
        if len(self.data[1]) == 0:
            raise ValueError(f"phase {self.name!r} has no training data")
        if self.batch_size < 1:
            raise ValueError(f"phase {self.name!r}: batch_size must be >= 1")

    @property
    def num_steps(self) -> int:
        if self.steps is not None:
            return int(self.steps)
        return max(1, math.ceil(self.epochs * len(self.data[1]) / self.batch_size))


@dataclasses.dataclass
class TrainingHistory:
    """Everything the trainer measured (JSON-ready through :meth:`to_dict`)."""

    steps: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    evals: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    phases: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    # ---- access -------------------------------------------------------------------------------
    def column(self, key: str) -> list[Any]:
        """One per-step series (None where a step did not report ``key``)."""
        return [row.get(key) for row in self.steps]

    def columns(self) -> dict[str, list[Any]]:
        keys: list[str] = []
        for row in self.steps:
            keys.extend(k for k in row if k not in keys)
        return {k: self.column(k) for k in keys}

    def phase_names(self) -> list[str]:
        return [p["name"] for p in self.phases]

    def phase_end(self, phase: str) -> dict[str, float]:
        """Accuracy on every eval set right after ``phase``."""
        for p in self.phases:
            if p["name"] == phase:
                return dict(p["eval"])
        raise KeyError(f"no phase {phase!r}; phases: {', '.join(self.phase_names())}")

    def accuracy(self, phase: str, eval_set: str) -> float:
        return float(self.phase_end(phase)[eval_set])

    # ---- derived metrics ----------------------------------------------------------------------
    def adaptation_steps(self, phase: str, fraction: float = 0.8, window: int = 10) -> float:
        """Steps into ``phase`` until the prequential accuracy reaches ``fraction`` of its final level.

        The curve is the trailing mean over ``window`` steps of the accuracy measured before each
        update; the final level is the mean of the phase's last ``window`` steps. Returns the
        1-based step count, or NaN when the final level is 0.
        """
        acc = np.array([r["acc_before"] for r in self.steps if r["phase"] == phase], dtype=float)
        if len(acc) == 0:
            raise KeyError(f"no steps recorded for phase {phase!r}")
        w = max(1, min(window, len(acc)))
        final = float(acc[-w:].mean())
        if final <= 0:
            return float("nan")
        smooth = np.convolve(acc, np.ones(w) / w, mode="full")[: len(acc)]
        smooth /= np.minimum(np.arange(1, len(acc) + 1), w) / w  # trailing mean over what exists
        hit = np.flatnonzero(smooth >= fraction * final)
        return float(hit[0] + 1) if len(hit) else float(len(acc))

    def retention(self, eval_set: str, reference_phase: str | None = None) -> dict[str, float]:
        """Accuracy on ``eval_set`` after each phase divided by its accuracy after ``reference_phase``."""
        ref_name = reference_phase or self.phases[0]["name"]
        ref = self.accuracy(ref_name, eval_set)
        out = {}
        for p in self.phases:
            acc = float(p["eval"][eval_set])
            out[p["name"]] = acc / ref if ref > 0 else float("nan")
        return out

    def phase_mean(self, phase: str, key: str) -> float:
        vals = [r[key] for r in self.steps if r["phase"] == phase and r.get(key) is not None]
        return float(np.mean(vals)) if vals else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.columns(), "evals": list(self.evals), "phases": list(self.phases)}


class PlasticTrainer:
    """Trains ``learner`` through ``phases`` and evaluates it on ``eval_sets`` (name -> (x, y)).

    Every eval set is scored at the end of each phase; every ``eval_every`` steps (0: never) the
    ``periodic_sets`` (default: all) are scored too, for the phase plot.
    """

    def __init__(
        self,
        learner: Learner,
        phases: list[PhaseConfig],
        eval_sets: Mapping[str, Data] | None = None,
        *,
        featurize: Callable[[torch.Tensor], torch.Tensor] | None = None,
        eval_every: int = 0,
        periodic_sets: list[str] | None = None,
        seed: int = 0,
        device: str = "cpu",
        progress: bool = False,
    ) -> None:
        if not phases:
            raise ValueError("a curriculum needs at least one phase")
        names = [p.name for p in phases]
        if len(set(names)) != len(names):
            raise ValueError(f"phase names must be unique, got {names}")
        self.learner = learner
        self.phases = list(phases)
        self.featurize = featurize
        self.eval_every = int(eval_every)
        self.periodic_sets = periodic_sets
        self.seed = int(seed)
        self.device = device
        self.progress = progress
        self.eval_sets = {name: self._prepare(x, y) for name, (x, y) in (eval_sets or {}).items()}
        self.history = TrainingHistory()
        self.step = 0

    def _prepare(self, x: torch.Tensor, y: torch.Tensor) -> Data:
        if self.featurize is not None:  # frozen eyes: features of an eval set never change
            x = self.featurize(x)
        return torch.as_tensor(x).to(self.device), torch.as_tensor(y).long().to(self.device)

    @torch.no_grad()
    def evaluate(
        self,
        sets: list[str] | None = None,
        *,
        predict: Callable[[torch.Tensor], torch.Tensor] | None = None,
        batch_size: int = 4096,
    ) -> dict[str, float]:
        """Accuracy of ``predict`` (default: the learner's) on each eval set (or on ``sets`` only)."""
        predict = predict or self.learner.predict
        out = {}
        for name, (x, y) in self.eval_sets.items():
            if sets is not None and name not in sets:
                continue
            correct = 0
            for i in range(0, len(y), batch_size):
                correct += int((predict(x[i : i + batch_size]).to(y.device) == y[i : i + batch_size]).sum())
            out[name] = correct / max(len(y), 1)
        return out

    def _log_eval(self, phase: str, sets: list[str] | None = None) -> dict[str, float]:
        acc = self.evaluate(sets)
        views = getattr(self.learner, "eval_views", dict)()
        for view, predict in views.items():  # e.g. the triarchic brain's core pathway alone
            acc.update({f"{name}@{view}": v for name, v in self.evaluate(sets, predict=predict).items()})
        for name, value in acc.items():
            self.history.evals.append({"step": self.step, "phase": phase, "set": name, "accuracy": value})
        return acc

    def _batches(self, phase: PhaseConfig, gen: torch.Generator) -> list[torch.Tensor]:
        n = len(phase.data[1])
        need = phase.num_steps * phase.batch_size
        order = torch.cat([torch.randperm(n, generator=gen) for _ in range(math.ceil(need / n))])
        # whole batches from consecutive permutations; a batch may straddle two passes
        return [order[i * phase.batch_size : (i + 1) * phase.batch_size] for i in range(phase.num_steps)]

    def train(self) -> TrainingHistory:
        from tqdm.auto import tqdm

        gen = torch.Generator().manual_seed(self.seed)
        if self.eval_sets and not self.history.evals:
            self._log_eval("start", self.periodic_sets)
        for phase in self.phases:
            x_all, y_all = phase.data
            start = self.step
            snapshot = self.learner.core_snapshot()
            t0 = time.perf_counter()
            batches = self._batches(phase, gen)
            for i, idx in enumerate(tqdm(batches, desc=phase.name, disable=not self.progress)):
                x, y = x_all[idx], torch.as_tensor(y_all)[idx]
                if phase.transform is not None:
                    x = phase.transform(x)
                if self.featurize is not None:
                    x = self.featurize(x)
                x, y = torch.as_tensor(x).to(self.device), y.long().to(self.device)
                stats = self.learner.train_step(x, y, mode=phase.mode)
                self.step += 1
                row = {"step": self.step, "phase": phase.name, "phase_step": i + 1, "mode": phase.mode}
                row.update(stats)
                row.update(self.learner.step_stats())
                self.history.steps.append(row)
                if self.eval_every and self.eval_sets and self.step % self.eval_every == 0 and i + 1 < len(batches):
                    self._log_eval(phase.name, self.periodic_sets)
            drift = self.learner.core_drift(snapshot)
            end = self.learner.end_phase(phase.consolidate_after)
            wall = time.perf_counter() - t0
            acc = self._log_eval(phase.name) if self.eval_sets else {}
            self.history.phases.append(
                {
                    "name": phase.name,
                    "mode": phase.mode,
                    "start_step": start,
                    "end_step": self.step,
                    "steps": self.step - start,
                    "core_drift": drift,
                    "consolidated": bool(phase.consolidate_after),
                    "end": end,
                    "eval": acc,
                    "wall_s": wall,
                }
            )
        return self.history

    def plot_results(self, **kwargs: Any):
        """The phase plot of this run (see :func:`circadian_vision.plastic.plots.plot_history`)."""
        from circadian_vision.plastic.plots import plot_history

        return plot_history(self.history, **kwargs)
