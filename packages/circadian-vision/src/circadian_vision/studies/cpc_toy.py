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

from circadian_core.config import from_dict
from circadian_core.record import StudyResult
from circadian_vision.nets import make_net
from circadian_vision.shift_tasks import TwoClusterConfig, two_cluster_task
from circadian_vision.studies.continual_shift import counters, model_config, new_history, train_phase


@dataclasses.dataclass
class ToyStudyConfig:
    model: str = "circadian"  # backprop | predictive_coding | circadian
    task: TwoClusterConfig = dataclasses.field(default_factory=TwoClusterConfig)
    epochs: int = 20
    batch_size: int = 32
    eval_every: int = 1
    backprop: dict[str, Any] = dataclasses.field(default_factory=dict)
    predictive_coding: dict[str, Any] = dataclasses.field(default_factory=dict)
    circadian: dict[str, Any] = dataclasses.field(default_factory=dict)


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
    metrics = {
        "accuracy": net.accuracy(data.x_test, data.y_test),
        "loss": net.loss(data.x_test, data.y_test),
        "train_loss": history["train_loss"][-1] if history["train_loss"] else float("nan"),
        "hidden_start": float(hidden_start),
        "hidden_end": float(net.hidden_width),
        **counters(net),
        "params": float(net.param_count()),
    }
    info = {"task": {**dataclasses.asdict(cfg.task), "split": data.sizes()}, "events": list(net.events)}
    timings = {"train_s": train_s, "sleep_s": float(net.stats().get("sleep_s", 0.0))}
    return StudyResult(metrics=metrics, history=history, info=info, timings=timings)
