"""Study ``cpc_shift``: the continual-shift stress test (retention vs adaptation), NumPy.

One cell = one model (backprop, predictive_coding or circadian) on one task profile and seed.
Phase A trains on the base clusters; phase B on a small class-balanced fraction of the rotated,
translated, noisier clusters. The profiles (:mod:`circadian_vision.shift_tasks`): the prototype's
own ``proto-strength`` / ``proto-hardest`` (its 2-D data draw for draw, its epochs, architecture
and forced sleep schedule: the only cells its published numbers are compared with) and our
``strength-case`` / ``hardest-case`` (an extension: 6-D, several clusters per class). Metrics
(test accuracies):

* ``A_pre``: task A after phase A; ``B_pre``: task B after phase A (before any B training);
* ``A_post``, ``B_post``: tasks A and B after phase B;
* ``retention = A_post / A_pre`` (the share of phase-A accuracy kept);
* ``balanced = (A_post + B_post) / 2`` (retention and adaptation weighed equally; it is the
  average accuracy ACC of the 2x2 accuracy matrix, whose backward transfer is ``A_post - A_pre``).

No model trains on the held-out slice of either phase's training data; the circadian rollback
guard decides on it (phase A's slice in phase A; in phase B the slices of both phases, each phase
weighing the same). The test sets are only evaluated. ``sleep_every: [a, b]`` replaces the sleep
trigger by the prototype's forced schedule (one sleep every ``a`` steps in phase A and every ``b``
in phase B, counted from the start of each phase); ``batch_size: null`` trains on the full batch,
one step per epoch, as the prototype does. History (per ``eval_every`` epochs): phase, test
accuracies, train energy/loss, hidden width and the cumulative sleeps, splits, prunes and
rollbacks; ``info.events`` lists every sleep.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from circadian_core.config import ConfigError, from_dict
from circadian_core.contract import Contract, Metric
from circadian_core.record import StudyResult
from circadian_vision.nets import NETS, NumpyNet, make_net
from circadian_vision.shift_tasks import Split, make_shift_task

COUNTERS = ("sleeps", "splits", "prunes", "rollbacks")


@dataclasses.dataclass
class ShiftStudyConfig:
    model: str = "circadian"  # backprop | predictive_coding | circadian
    task: dict[str, Any] = dataclasses.field(default_factory=dict)  # a profile name + overrides (shift_tasks)
    epochs_a: int = 20
    epochs_b: int = 20
    batch_size: int | None = 32  # None: full batch (one step per epoch, the prototype's way)
    sleep_every: list[int] | None = None  # circadian: forced sleep every [a, b] steps in phases A, B
    eval_every: int = 5  # epochs between history rows (test accuracies for the figures)
    backprop: dict[str, Any] = dataclasses.field(default_factory=dict)
    predictive_coding: dict[str, Any] = dataclasses.field(default_factory=dict)
    circadian: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ShiftInfo:
    """``info`` of a cpc_shift record."""

    task: dict[str, Any] = dataclasses.field(default_factory=dict)  # the resolved task config + sizes
    accuracy_matrix: list[list[float]] = dataclasses.field(default_factory=list)  # [[A_pre, B_pre], [A_post, B_post]]
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # every sleep (circadian)


def _acc(name: str, meaning: str) -> Metric:
    return Metric(name, meaning, "accuracy", higher_is_better=True)


def _circ(name: str, meaning: str, unit: str = "count") -> Metric:
    return Metric(name, meaning + " (circadian only; null for the other models)", unit, nullable=True)


CONTRACT = Contract(
    "cpc_shift",
    version=2,
    settings=ShiftStudyConfig,
    info=ShiftInfo,
    description="Continual shift: phase A, then a small fraction of a shifted phase B; retention vs adaptation.",
    metrics=(
        _acc("A_pre", "test accuracy on task A after phase A"),
        _acc("B_pre", "test accuracy on task B after phase A, before any phase-B training"),
        _acc("A_post", "test accuracy on task A after phase B"),
        _acc("B_post", "test accuracy on task B after phase B"),
        Metric("retention", "A_post / A_pre (null if A_pre is 0)", "ratio", higher_is_better=True, nullable=True),
        _acc("balanced", "(A_post + B_post) / 2, the ACC of the 2x2 accuracy matrix"),
        Metric("bwt", "backward transfer A_post - A_pre", "accuracy", higher_is_better=True),
        Metric("hidden_start", "width of the last hidden layer at the start", "units"),
        Metric("hidden_mid", "width of the last hidden layer after phase A", "units"),
        Metric("hidden_end", "width of the last hidden layer at the end", "units"),
        _circ("distinct_start", "units at the start whose incoming rows differ (cosine > 0.999 counted once)", "units"),
        _circ("distinct_end", "units at the end whose incoming rows differ (cosine > 0.999 counted once)", "units"),
        _circ("sleeps", "sleeps run"),
        _circ("splits", "splits committed (not rolled back)"),
        _circ("prunes", "prunes committed (not rolled back)"),
        _circ("rollbacks", "sleeps undone by the rollback guard"),
        _circ("sleeps_b", "sleeps run during phase B"),
        _circ("splits_b", "splits committed during phase B"),
        _circ("structural_sleeps", "kept sleeps that split or pruned (the prototype's `sleep_events`)"),
        Metric("spread_held_b", "fraction of phase-B wake steps on which the adaptive trigger's spread condition held "
               "(null: not circadian, or a fixed schedule)", "fraction", nullable=True),
        Metric("plateau_held_b", "fraction of phase-B wake steps on which its energy-plateau condition held "
               "(null: not circadian, or a fixed schedule)", "fraction", nullable=True),
        Metric("params", "parameters at the end", "count"),
    ),
)


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
    batch_size: int | None,
    rng: np.random.Generator,
    history: dict[str, list[Any]],
    evals: dict[str, Split],
    eval_every: int = 1,
    epoch0: int = 0,
    total_epochs: int | None = None,
) -> float:
    """Train ``epochs`` over ``data``'s training rows; every ``eval_every`` epochs and after the last
    one, append a history row (epochs numbered from ``epoch0 + 1``). Returns the training seconds.
    With ``total_epochs``, a circadian network is told its progress (epoch / total) before each epoch."""
    t = 0.0
    for e in range(epochs):
        if total_epochs and hasattr(net, "set_progress"):
            net.set_progress((epoch0 + e + 1) / total_epochs)
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


def circadian_metrics(net: NumpyNet, counts_a: dict[str, Any] | None = None) -> dict[str, float | None]:
    """The circadian-only metrics (None for a model without sleep)."""
    names = ("distinct_end", *COUNTERS, "sleeps_b", "splits_b", "structural_sleeps", "spread_held_b", "plateau_held_b")
    if not hasattr(net, "sleep"):
        return dict.fromkeys(names)
    c = counters(net)
    kept = [e for e in net.events if not e.get("skipped") and not e["rolled_back"]]
    out: dict[str, float | None] = {"distinct_end": float(net.distinct_units()), **c,  # type: ignore[attr-defined]
                                    "structural_sleeps": float(sum(1 for e in kept if e["splits"] + e["prunes"] > 0))}
    if counts_a is not None:
        out["sleeps_b"] = c["sleeps"] - counts_a["sleeps"]
        out["splits_b"] = c["splits"] - counts_a["splits"]
        tally, before = net.trigger_tally, counts_a.get("tally") or {}  # type: ignore[attr-defined]
        checks = tally["checks"] - before.get("checks", 0)
        if checks > 0:
            out["spread_held_b"] = (tally["spread"] - before.get("spread", 0)) / checks
            out["plateau_held_b"] = (tally["plateau"] - before.get("plateau", 0)) / checks
    return {k: out.get(k) for k in names}


def _set_phase_schedule(net: NumpyNet, cfg: ShiftStudyConfig, phase: int) -> None:
    if cfg.sleep_every is None or not hasattr(net, "set_sleep_every"):
        return
    if len(cfg.sleep_every) != 2:
        raise ConfigError(f"cpc_shift: sleep_every needs two numbers [phase A, phase B], got {cfg.sleep_every}")
    net.set_sleep_every(cfg.sleep_every[phase])  # type: ignore[attr-defined]


def run(
    config: dict[str, Any],
    *,
    seed: int,
    device: str = "cpu",
    workdir: Path | None = None,
    artifacts: dict[str, Path] | None = None,
) -> StudyResult:
    cfg = from_dict(ShiftStudyConfig, config, where="cpc_shift")
    task_cfg, task = make_shift_task(cfg.task, seed)
    net = make_net(cfg.model, task_cfg.dim, task_cfg.num_classes, model_config(cfg, "cpc_shift"), seed=seed)
    rng = np.random.default_rng([seed, 2])
    history = new_history()
    evals = {"acc_a": task.a, "acc_b": task.b}
    hidden_start = net.hidden_width
    distinct_start = float(net.distinct_units()) if hasattr(net, "distinct_units") else None
    total = cfg.epochs_a + cfg.epochs_b

    if hasattr(net, "set_holdouts"):
        net.set_holdouts([(task.a.x_holdout, task.a.y_holdout)])
    _set_phase_schedule(net, cfg, 0)
    t_a = train_phase(net, task.a, phase="A", epochs=cfg.epochs_a, batch_size=cfg.batch_size, rng=rng,
                      history=history, evals=evals, eval_every=cfg.eval_every, total_epochs=total)
    a_pre = net.accuracy(task.a.x_test, task.a.y_test)
    b_pre = net.accuracy(task.b.x_test, task.b.y_test)
    hidden_mid = net.hidden_width
    counts_a: dict[str, Any] = {**counters(net), "tally": dict(getattr(net, "trigger_tally", {}))}

    if hasattr(net, "set_holdouts"):  # everything held out of the training data so far, phases weighed equally
        net.set_holdouts([(task.a.x_holdout, task.a.y_holdout), (task.b.x_holdout, task.b.y_holdout)])
    _set_phase_schedule(net, cfg, 1)
    t_b = train_phase(net, task.b, phase="B", epochs=cfg.epochs_b, batch_size=cfg.batch_size, rng=rng,
                      history=history, evals=evals, eval_every=cfg.eval_every, epoch0=cfg.epochs_a, total_epochs=total)
    a_post = net.accuracy(task.a.x_test, task.a.y_test)
    b_post = net.accuracy(task.b.x_test, task.b.y_test)

    metrics: dict[str, Any] = {
        "A_pre": a_pre,
        "B_pre": b_pre,
        "A_post": a_post,
        "B_post": b_post,
        "retention": a_post / a_pre if a_pre > 0 else None,
        "balanced": 0.5 * (a_post + b_post),
        "bwt": a_post - a_pre,
        "hidden_start": float(hidden_start),
        "hidden_mid": float(hidden_mid),
        "hidden_end": float(net.hidden_width),
        "distinct_start": distinct_start,
        **circadian_metrics(net, counts_a),
        "params": float(net.param_count()),
    }
    info = ShiftInfo(
        task={**dataclasses.asdict(task_cfg), **task.info},
        accuracy_matrix=[[a_pre, b_pre], [a_post, b_post]],
        events=list(net.events),
    )
    timings = {"train_s": t_a + t_b, "train_a_s": t_a, "train_b_s": t_b, "sleep_s": float(net.stats().get("sleep_s", 0.0))}
    return StudyResult(metrics=metrics, history=history, info=dataclasses.asdict(info), timings=timings)
