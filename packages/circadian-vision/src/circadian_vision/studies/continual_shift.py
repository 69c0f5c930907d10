"""Study ``cpc_shift``: the continual-shift stress test (retention vs adaptation), NumPy.

One cell = one model (backprop, predictive_coding or circadian) on one profile (strength-case or
hardest-case) and seed. Phase A trains on the base clusters; phase B on a small class-balanced
fraction of the rotated, translated, noisier clusters. Metrics (test accuracies):

* ``A_pre``: task A after phase A; ``B_pre``: task B after phase A (before any B training);
* ``A_post``, ``B_post``: tasks A and B after phase B;
* ``retention = A_post / A_pre`` (the share of phase-A accuracy kept);
* ``balanced = (A_post + B_post) / 2`` (retention and adaptation weighed equally; it is the
  average accuracy ACC of the 2x2 accuracy matrix, whose backward transfer is ``A_post - A_pre``).

No model trains on the held-out slice of either phase's training data; the circadian rollback
guard decides on it (phase A's slice in phase A, both slices in phase B). The test sets are only
evaluated. History (per epoch): phase, test accuracies, train energy/loss, hidden width and the
cumulative sleeps, splits, prunes and rollbacks; ``info.events`` lists every sleep.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from circadian_core.config import ConfigError, from_dict
from circadian_core.record import StudyResult
from circadian_vision.nets import NETS, NumpyNet, make_net
from circadian_vision.shift_tasks import Split, continual_shift_task, shift_task_config

COUNTERS = ("sleeps", "splits", "prunes", "rollbacks")


@dataclasses.dataclass
class ShiftStudyConfig:
    model: str = "circadian"  # backprop | predictive_coding | circadian
    task: dict[str, Any] = dataclasses.field(default_factory=dict)  # ShiftTaskConfig (profile + overrides)
    epochs_a: int = 20
    epochs_b: int = 20
    batch_size: int = 32
    eval_every: int = 5  # epochs between history rows (test accuracies for the figures)
    backprop: dict[str, Any] = dataclasses.field(default_factory=dict)
    predictive_coding: dict[str, Any] = dataclasses.field(default_factory=dict)
    circadian: dict[str, Any] = dataclasses.field(default_factory=dict)


def counters(net: NumpyNet) -> dict[str, float]:
    stats = net.stats()
    return {k: float(stats.get(k, 0.0)) for k in COUNTERS}


def new_history() -> dict[str, list[Any]]:
    return {"phase": [], "epoch": [], "step": [], "train_loss": [], "acc_a": [], "acc_b": [], "hidden": [],
            **{k: [] for k in COUNTERS}}


def train_phase(
    net: NumpyNet,
    data: Split,
    *,
    phase: str,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
    history: dict[str, list[Any]],
    evals: dict[str, Split],
    eval_every: int = 1,
    epoch0: int = 0,
) -> float:
    """Train ``epochs`` over ``data``'s training rows; every ``eval_every`` epochs and after the last
    one, append a history row (epochs numbered from ``epoch0 + 1``). Returns the training seconds."""
    t = 0.0
    for e in range(epochs):
        t0 = time.perf_counter()
        loss = net.fit_epoch(data.x_train, data.y_train, batch_size, rng)
        t += time.perf_counter() - t0
        if (e + 1) % eval_every and e + 1 < epochs:
            continue
        history["phase"].append(phase)
        history["epoch"].append(epoch0 + e + 1)
        history["step"].append(net.steps)
        history["train_loss"].append(loss)
        for key, split in evals.items():
            history[key].append(net.accuracy(split.x_test, split.y_test))
        history["hidden"].append(net.hidden_width)
        for k, v in counters(net).items():
            history[k].append(v)
    return t


def model_config(cfg: Any, where: str) -> dict[str, Any]:
    if cfg.model not in NETS:
        raise ConfigError(f"{where}: unknown model {cfg.model!r}; models: {', '.join(NETS)}")
    return dict(getattr(cfg, cfg.model))


def run(
    config: dict[str, Any],
    *,
    seed: int,
    device: str = "cpu",
    workdir: Path | None = None,
    artifacts: dict[str, Path] | None = None,
) -> StudyResult:
    cfg = from_dict(ShiftStudyConfig, config, where="cpc_shift")
    task_cfg = shift_task_config(cfg.task)
    task = continual_shift_task(task_cfg, np.random.default_rng([seed, 0]))
    net = make_net(cfg.model, task_cfg.dim, task_cfg.num_classes, model_config(cfg, "cpc_shift"), seed=seed)
    rng = np.random.default_rng([seed, 2])
    history = new_history()
    evals = {"acc_a": task.a, "acc_b": task.b}
    hidden_start = net.hidden_width

    if hasattr(net, "set_holdout"):
        net.set_holdout(task.a.x_holdout, task.a.y_holdout)
    t_a = train_phase(net, task.a, phase="A", epochs=cfg.epochs_a, batch_size=cfg.batch_size, rng=rng,
                      history=history, evals=evals, eval_every=cfg.eval_every)
    a_pre = net.accuracy(task.a.x_test, task.a.y_test)
    b_pre = net.accuracy(task.b.x_test, task.b.y_test)
    hidden_mid = net.hidden_width
    counts_a = counters(net)

    if hasattr(net, "set_holdout"):  # everything held out of the training data so far
        net.set_holdout(np.concatenate([task.a.x_holdout, task.b.x_holdout]),
                        np.concatenate([task.a.y_holdout, task.b.y_holdout]))
    t_b = train_phase(net, task.b, phase="B", epochs=cfg.epochs_b, batch_size=cfg.batch_size, rng=rng,
                      history=history, evals=evals, eval_every=cfg.eval_every, epoch0=cfg.epochs_a)
    a_post = net.accuracy(task.a.x_test, task.a.y_test)
    b_post = net.accuracy(task.b.x_test, task.b.y_test)

    metrics: dict[str, float] = {
        "A_pre": a_pre,
        "B_pre": b_pre,
        "A_post": a_post,
        "B_post": b_post,
        "retention": a_post / a_pre if a_pre > 0 else float("nan"),
        "balanced": 0.5 * (a_post + b_post),
        "bwt": a_post - a_pre,
        "hidden_start": float(hidden_start),
        "hidden_mid": float(hidden_mid),
        "hidden_end": float(net.hidden_width),
        **counters(net),
        "splits_b": counters(net)["splits"] - counts_a["splits"],
        "sleeps_b": counters(net)["sleeps"] - counts_a["sleeps"],
        "params": float(net.param_count()),
    }
    info: dict[str, Any] = {
        "task": {**dataclasses.asdict(task_cfg), **task.info},
        "accuracy_matrix": [[a_pre, b_pre], [a_post, b_post]],
        "events": list(net.events),
    }
    timings = {"train_s": t_a + t_b, "train_a_s": t_a, "train_b_s": t_b, "sleep_s": float(net.stats().get("sleep_s", 0.0))}
    return StudyResult(metrics=metrics, history=history, info=info, timings=timings)
