"""Study ``hal``: one (method or ablation, seed) cell of the DAG, run in every configured scenario.

``run(config, *, seed, device, workdir, artifacts)`` loads the task sequence onto the device once,
then for each scenario (``task``: task-incremental with per-task heads; ``class``: class-incremental
with one shared, masked head) seeds torch, builds a fresh :class:`~hal_sleep_wake.learner.Learner`
and records the accuracy matrix. Metrics carry the scenario prefix (``til_``, ``cil_``): ACC, BWT and
forgetting from ``circadian_core.metrics``, the accuracy on the first task at the end, and speed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from circadian_core.config import ConfigError
from circadian_core.metrics import accuracy_matrix_summary
from circadian_core.record import StudyResult
from hal_sleep_wake.config import SCENARIO_NAMES, SCENARIO_PREFIX, load_config
from hal_sleep_wake.data import load_sequence, read_sequence
from hal_sleep_wake.learner import Learner


def run(
    config: dict[str, Any],
    *,
    seed: int,
    device: str = "cpu",
    workdir: Path | None = None,
    artifacts: dict[str, Path] | None = None,
) -> StudyResult:
    cfg = load_config(config)
    dev = torch.device(device)
    if dev.type == "cpu":
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    if cfg.data.artifact is not None:
        if cfg.data.artifact not in (artifacts or {}):
            raise ConfigError(
                f"hal.data.artifact: {cfg.data.artifact!r} is not among this study's needs "
                f"({', '.join(artifacts or {}) or 'none'}); add it under `needs` in params.yaml"
            )
        seq = read_sequence(artifacts[cfg.data.artifact])
    else:
        seq = load_sequence(cfg.data)
    seq = seq.to(dev)
    timings: dict[str, float] = {"load_s": time.perf_counter() - t0}
    metrics: dict[str, float] = {}
    history: dict[str, list[Any]] = {}
    info: dict[str, Any] = {
        "tasks": seq.names,
        "classes_per_task": seq.head_sizes,
        "train_sizes": [len(y) for y in seq.y_train],
        "test_sizes": [len(y) for y in seq.y_test],
        "image_shape": list(seq.item_shape),
        "method": cfg.method,
        "replay_n": cfg.replay_n,
        "sleeps": cfg.sleeps,
        "scenarios": {},
        "accuracy_matrix": {},
    }
    wake_images = wake_s = merge_s = 0.0
    for scenario in cfg.scenarios:
        torch.manual_seed(seed)  # each scenario starts from the same state, whichever ran first
        t1 = time.perf_counter()
        learner = Learner(cfg, seq, scenario, device=dev, seed=seed)
        matrix, losses = learner.fit()
        s = learner.stats
        p = SCENARIO_PREFIX[scenario]
        summary = accuracy_matrix_summary(matrix)
        metrics.update({
            f"{p}_acc": summary["acc"],
            f"{p}_bwt": summary["bwt"],
            f"{p}_forgetting": summary["forgetting"],
            f"{p}_first_task_final": matrix[-1][0],
            f"{p}_first_task_learned": matrix[0][0],
            f"{p}_sleeps": float(s["sleeps"]),
        })
        info["accuracy_matrix"][scenario] = matrix
        info["scenarios"][scenario] = {
            "name": SCENARIO_NAMES[scenario],
            "lora_targets": learner.lora_targets,
            "trainable_params": sum(p_.numel() for p_ in learner.trainable()),
            "total_params": sum(p_.numel() for p_ in learner.model.parameters()),
            "buffer_fill": learner.memory.fill if learner.memory is not None else None,
            **{k: s[k] for k in ("sleeps", "merged_layers", "dropped", "rem_loss_first", "rem_loss_last",
                                 "adapter_norm_at_sleep", "wake_images")},
        }
        history[f"{p}_wake_loss"] = losses
        for k in ("wake_s", "sleep_s", "nrem_s", "rem_s", "compress_s", "eval_s", "merge_s"):
            timings[f"{p}_{k}"] = s[k]
        timings[f"{p}_total_s"] = time.perf_counter() - t1
        wake_images += s["wake_images"]
        wake_s += s["wake_s"]
        merge_s += s["merge_s"]
    metrics["wake_images_per_s"] = wake_images / wake_s if wake_s else float("nan")
    n_merges = sum(info["scenarios"][sc]["sleeps"] for sc in cfg.scenarios) if cfg.uses_lora and cfg.sleep.nrem else 0
    metrics["merge_ms"] = 1000 * merge_s / n_merges if n_merges else float("nan")
    return StudyResult(metrics=metrics, history=history, info=info, timings=timings)
