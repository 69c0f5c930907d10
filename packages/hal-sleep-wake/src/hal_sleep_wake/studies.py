"""The hal studies: one (method or ablation, seed) cell of the DAG, run in every configured scenario.

One study function serves every hal study of params.yaml - the sleep ablations (``hal``), the
reference methods on Mammoth's protocol (``hal_seqcl``: Split-Digits in mini, Seq-CIFAR-10 in paper)
and the seed's extended sequence (``hal_extended``, paper) - because they differ only in settings
(data, scenario, model, method), which :data:`CONTRACT` declares as :class:`HALConfig`.

``run(config, *, seed, device, workdir, artifacts)`` loads the task sequence onto the device once,
then for each scenario seeds torch, builds a fresh :class:`~hal_sleep_wake.learner.Learner` and
records its accuracy matrices: ``task`` (per-task heads) gives the task-incremental view, ``class``
(one masked head) the class-incremental one, ``one-head`` (Mammoth's single head) both from one run.
Metrics carry the view's prefix (``til_``, ``cil_``); timings (wake images/s, merge ms) are timings.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from circadian_core.contract import Contract, Metric
from circadian_core.metrics import accuracy_matrix_summary
from circadian_core.record import StudyResult
from hal_sleep_wake.config import SCENARIO_NAMES, SCENARIO_PREFIX, HALConfig, load_config


@dataclasses.dataclass
class ViewResult:
    """One accuracy matrix: ``view`` (task | class) of the run in ``scenario``."""

    view: str
    scenario: str
    matrix: list[list[float]]


@dataclasses.dataclass
class ScenarioRun:
    """What one learner did in one scenario (for the record and the paper's setting, not for statistics)."""

    scenario: str
    name: str
    views: list[str]
    lora_targets: list[str]
    trainable_params: int
    total_params: int
    buffer_fill: float | None
    buffer_classes: dict[str, int] | None  # label slot -> buffered samples at the end
    sleeps: int
    merges: int
    merged_layers: int
    dropped: int
    rem_loss_first: list[float]
    rem_loss_last: list[float]
    adapter_norm_at_sleep: list[float]
    wake_images: int
    wake_loss: list[list[float]]  # per task, per epoch
    train_acc: list[list[float]]  # per task, per epoch (the new batches)


@dataclasses.dataclass
class HALInfo:
    tasks: list[str]
    classes_per_task: list[int]
    train_sizes: list[int]
    test_sizes: list[int]
    image_shape: list[int]
    method: str
    continual: bool  # False: joint training (BWT and forgetting are undefined)
    views: list[ViewResult]
    runs: list[ScenarioRun]

    def matrix(self, view: str) -> list[list[float]] | None:
        return next((v.matrix for v in self.views if v.view == view), None)


def _view_metrics(prefix: str, name: str) -> tuple[Metric, ...]:
    return (
        Metric(f"{prefix}_acc", f"{name}: average accuracy over all tasks after the last (ACC)", "fraction", True, True),
        Metric(f"{prefix}_bwt", f"{name}: backward transfer (Lopez-Paz and Ranzato 2017; negative = forgetting); "
               "None for joint training", "fraction", True, True),
        Metric(f"{prefix}_forgetting", f"{name}: forgetting (Chaudhry et al. 2018); None for joint training",
               "fraction", False, True),
        Metric(f"{prefix}_learned", f"{name}: mean accuracy on each task right after learning it (the level each "
               "task was trained to); None for joint training", "fraction", True, True),
        Metric(f"{prefix}_first_task_learned", f"{name}: accuracy on the first task right after learning it; None "
               "for joint training", "fraction", True, True),
        Metric(f"{prefix}_first_task_final", f"{name}: accuracy on the first task after the last", "fraction", True,
               True),
    )


CONTRACT: Contract[HALConfig, HALInfo] = Contract(
    name="hal",
    version=2,  # 2: views, ACC/BWT/forgetting/learned per view; speeds moved to timings (issue 10, 16)
    settings=HALConfig,
    metrics=_view_metrics("til", "task-incremental") + _view_metrics("cil", "class-incremental"),
    info=HALInfo,
    description="A continual learner on a task sequence; metrics of its accuracy matrices (None where the "
                "cell does not record that view).",
)


def _load(cfg: HALConfig, artifacts: dict[str, Path] | None) -> Any:
    from circadian_core.runner import require_artifact
    from hal_sleep_wake.data import load_sequence, read_sequence

    if cfg.data.artifact is not None:
        return read_sequence(require_artifact(artifacts or {}, cfg.data.artifact, study="hal", key="data.artifact"))
    return load_sequence(cfg.data)


def run(
    config: dict[str, Any],
    *,
    seed: int,
    device: str = "cpu",
    workdir: Path | None = None,
    artifacts: dict[str, Path] | None = None,
    progress: bool = True,
) -> StudyResult:
    import torch

    from hal_sleep_wake.learner import Learner

    cfg = load_config(config)
    dev = torch.device(device)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    seq = _load(cfg, artifacts).to(dev)
    timings: dict[str, float] = {"load_s": time.perf_counter() - t0}
    views, runs = [], []
    wake_images = wake_s = merge_s = 0.0
    merges = 0
    continual = True
    for scenario in cfg.scenarios:
        torch.manual_seed(seed)  # each scenario starts from the same state, whichever ran first
        t1 = time.perf_counter()
        learner = Learner(cfg, seq, scenario, device=dev, seed=seed, progress=progress)
        fit = learner.fit()
        s = learner.stats
        continual = learner.method.continual
        views += [ViewResult(v, scenario, m) for v, m in fit.matrices.items()]
        mem = learner.memory
        runs.append(ScenarioRun(
            scenario=scenario, name=SCENARIO_NAMES[scenario], views=list(fit.matrices),
            lora_targets=learner.lora_targets, trainable_params=sum(p.numel() for p in learner.trainable()),
            total_params=sum(p.numel() for p in learner.model.parameters()),
            buffer_fill=mem.fill if mem is not None else None,
            buffer_classes={str(k): v for k, v in mem.class_counts().items()} if mem is not None else None,
            sleeps=s["sleeps"], merges=s["merges"], merged_layers=s["merged_layers"], dropped=s["dropped"],
            rem_loss_first=s["rem_loss_first"], rem_loss_last=s["rem_loss_last"],
            adapter_norm_at_sleep=s["adapter_norm_at_sleep"], wake_images=s["wake_images"],
            wake_loss=fit.losses, train_acc=fit.train_acc))
        for k in ("wake_s", "sleep_s", "nrem_s", "rem_s", "compress_s", "eval_s", "merge_s"):
            timings[f"{scenario}_{k}"] = s[k]
        timings[f"{scenario}_total_s"] = time.perf_counter() - t1
        wake_images += s["wake_images"]
        wake_s += s["wake_s"]
        merge_s += s["merge_s"]
        merges += s["merges"]
    if wake_s:
        timings["wake_images_per_s"] = wake_images / wake_s  # new images (replayed ones not counted)
    if merges:
        timings["merge_ms"] = 1000 * merge_s / merges
    # CPU seconds of this process: the cell's single-thread cost even when other work shares the machine
    timings["cpu_s"] = time.process_time() - cpu0
    metrics = metrics_of(views, continual)
    info = HALInfo(tasks=seq.names, classes_per_task=seq.head_sizes, train_sizes=[len(y) for y in seq.y_train],
                   test_sizes=[len(y) for y in seq.y_test], image_shape=list(seq.item_shape), method=cfg.method,
                   continual=continual, views=views, runs=runs)
    history = {f"{SCENARIO_PREFIX[v.view]}_accuracy_matrix": v.matrix for v in views}
    return StudyResult(metrics=metrics, history=history, info=dataclasses.asdict(info), timings=timings)


def metrics_of(views: list[ViewResult], continual: bool = True) -> dict[str, float | None]:
    """The contract's metrics from the accuracy matrices (None for a view not recorded, or undefined)."""
    metrics: dict[str, float | None] = {m.name: None for m in CONTRACT.metrics}
    for v in views:
        p = SCENARIO_PREFIX[v.view]
        summary = accuracy_matrix_summary(v.matrix)
        metrics[f"{p}_acc"] = summary["acc"]
        metrics[f"{p}_first_task_final"] = v.matrix[-1][0]
        if continual:
            metrics[f"{p}_first_task_learned"] = v.matrix[0][0]
            metrics[f"{p}_bwt"] = summary["bwt"]
            metrics[f"{p}_forgetting"] = summary["forgetting"]
            metrics[f"{p}_learned"] = sum(v.matrix[i][i] for i in range(len(v.matrix))) / len(v.matrix)
    return metrics
