"""Study ``cpc_toy``: backprop vs predictive coding vs circadian PC on two Gaussian clusters.

One cell = one model and seed, trained on the training rows (a class-stratified slice of the
training data is held out: the circadian rollback guard decides on it; no model trains on it) and
scored on the test rows. Metrics: test ``accuracy`` and ``loss`` (BCE), the last epoch's train
loss/energy, hidden width at start and end, and the circadian sleeps, splits, prunes, rollbacks.
History: per epoch, as in :mod:`circadian_vision.studies.continual_shift`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from circadian_core.config import bounded, from_dict
from circadian_core.contract import Contract, Metric
from circadian_core.record import StudyResult
from circadian_vision.nets import make_net
from circadian_vision.shift_tasks import TwoClusterConfig, two_cluster_task
from circadian_vision.studies.continual_shift import circadian_metrics, model_config, new_history, train_phase


@dataclasses.dataclass
class ToyStudyConfig:
    model: str = "circadian"  # backprop | predictive_coding | circadian
    task: TwoClusterConfig = dataclasses.field(default_factory=TwoClusterConfig)
    epochs: int = bounded(20, low=1)
    batch_size: int | None = 32  # None: full batch
    eval_every: int = 1
    backprop: dict[str, Any] = dataclasses.field(default_factory=dict)
    predictive_coding: dict[str, Any] = dataclasses.field(default_factory=dict)
    circadian: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ToyInfo:
    """``info`` of a cpc_toy record."""

    task: dict[str, Any] = dataclasses.field(default_factory=dict)
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def _circ(name: str, meaning: str, unit: str = "count") -> Metric:
    return Metric(name, meaning + " (circadian only; null for the other models)", unit, nullable=True)


CONTRACT = Contract(
    "cpc_toy",
    version=2,
    settings=ToyStudyConfig,
    info=ToyInfo,
    description="Backprop vs predictive coding vs circadian PC on two Gaussian clusters.",
    metrics=(
        Metric("accuracy", "test accuracy", "accuracy", higher_is_better=True),
        Metric("loss", "test BCE of the feed-forward prediction", "nats", higher_is_better=False),
        Metric("train_loss", "last epoch's mean training loss (energy for the PC models)", "nats"),
        Metric("hidden_start", "hidden width at the start", "units"),
        Metric("hidden_end", "hidden width at the end", "units"),
        _circ("distinct_end", "units at the end whose incoming rows differ (cosine > 0.999 counted once)", "units"),
        _circ("sleeps", "sleeps run"),
        _circ("splits", "splits committed"),
        _circ("prunes", "prunes committed"),
        _circ("rollbacks", "sleeps undone by the rollback guard"),
        _circ("structural_sleeps", "kept sleeps that split or pruned"),
        Metric("params", "parameters at the end", "count"),
    ),
)


def run(
    config: dict[str, Any],
    *,
    seed: int,
    device: str = "cpu",
    workdir: Path | None = None,
    artifacts: dict[str, Path] | None = None,
) -> StudyResult:
    cfg = from_dict(ToyStudyConfig, config, where="cpc_toy")
    data = two_cluster_task(cfg.task, np.random.default_rng([seed, 0]))
    net = make_net(cfg.model, cfg.task.dim, 2, model_config(cfg, "cpc_toy"), seed=seed)
    if hasattr(net, "set_holdout"):
        net.set_holdout(data.x_holdout, data.y_holdout)
    history = new_history()
    hidden_start = net.hidden_width
    train_s = train_phase(net, data, phase="toy", epochs=cfg.epochs, batch_size=cfg.batch_size,
                          rng=np.random.default_rng([seed, 2]), history=history, evals={"acc_a": data}, eval_every=cfg.eval_every)
    del history["acc_b"]
    history["accuracy"] = history.pop("acc_a")
    circ = circadian_metrics(net)
    metrics = {
        "accuracy": net.accuracy(data.x_test, data.y_test),
        "loss": net.loss(data.x_test, data.y_test),
        "train_loss": float(history["train_loss"][-1]),
        "hidden_start": float(hidden_start),
        "hidden_end": float(net.hidden_width),
        **{k: circ[k] for k in ("distinct_end", "sleeps", "splits", "prunes", "rollbacks", "structural_sleeps")},
        "params": float(net.param_count()),
    }
    info = dataclasses.asdict(ToyInfo(task={**dataclasses.asdict(cfg.task), "split": data.sizes()}, events=list(net.events)))
    timings = {"train_s": train_s, "sleep_s": float(net.stats().get("sleep_s", 0.0))}
    return StudyResult(metrics=metrics, history=history, info=info, timings=timings)
