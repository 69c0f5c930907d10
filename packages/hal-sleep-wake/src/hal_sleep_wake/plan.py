"""The plan of a run, as text, from its configuration alone: no data is read and no model is built."""

from __future__ import annotations

from hal_sleep_wake.config import SCENARIO_NAMES, HALConfig
from hal_sleep_wake.layout import lora_target_names

DATASET_CLASSES = {"cifar10": 10, "cifar100": 100}


def task_layout(cfg: HALConfig) -> list[tuple[str, int]] | None:
    """(task name, classes) per task, or None when the sequence lives in an artifact."""
    if cfg.data.artifact is not None:
        return None
    tasks: list[tuple[str, int]] = []
    for ds in cfg.data.sequence:
        if ds == "split_digits":
            per = 10 // cfg.data.n_tasks
            tasks += [(f"split_digits task {t}", per) for t in range(cfg.data.n_tasks)]
        else:
            tasks.append((ds, DATASET_CLASSES.get(ds, 0)))
    return tasks


def _sleep_text(cfg: HALConfig) -> str:
    if not cfg.sleeps:
        return "never (no sleep)"
    when = "at the end of every task" if cfg.sleep.schedule == "task" else f"every {cfg.sleep.every_steps} wake steps"
    parts = []
    if cfg.sleep.nrem:
        parts.append(f"NREM: W <- W + {cfg.sleep.scale:g} * (alpha/r) B A on every adapted layer, adapters reset "
                     "(Kaiming A, zero B), optimizer state cleared")
    if cfg.sleep.rem:
        r = cfg.rem
        parts.append(f"REM: {r.steps} steps x {r.batch_size} {r.dream} dreams from L1 at temperature {r.temperature:g}, "
                     "distilled into a fresh adapter (old tasks: snapshot of the previous sleep; current task: "
                     "the awake model)" + (", then merged exactly" if cfg.sleep.nrem else ""))
    m = cfg.memory
    if m.compress:
        parts.append(f"L1 compression when >= {m.compress_at:.0%} full: keep {m.keep:.0%} of capacity, equal "
                     f"shares per task, highest {m.importance} first")
    return when + "\n" + "\n".join("    - " + p for p in parts)


def plan_text(cfg: HALConfig) -> str:
    tasks = task_layout(cfg)
    n_tasks = len(tasks) if tasks else None
    lines = ["hal_sleep_wake plan (nothing loaded, no model built)"]
    method = {
        "hal": "hal: wake trains LoRA adapters only (ResNet base frozen)",
        "finetune": "finetune: every parameter trains, no replay, no sleep (reference)",
        "ewc": f"ewc: every parameter trains with the EWC penalty, lambda={cfg.ewc.strength:g} (reference)",
        "er": "er: every parameter trains with replay from L1, no sleep (reference)",
    }[cfg.method]
    lines.append(f"method     {method}")
    if tasks is None:
        lines.append(f"data       task sequence from artifact {cfg.data.artifact!r}")
    else:
        lines.append("data       " + " -> ".join(f"{name} ({k} classes)" for name, k in tasks))
    lines.append(f"           augmentation on the device: translate +-{cfg.data.crop_pad}px"
                 + (", horizontal flips" if cfg.data.flip else ""))
    mdl = cfg.model
    size = "torchvision's ResNet-18 widths" if mdl.width == 64 else f"narrow ResNet-18, width {mdl.width} (64 = standard)"
    norm = "BatchNorm" if mdl.norm == "batch" else f"GroupNorm({mdl.norm_groups})"
    lines.append(f"model      ResNet-18 (torchvision BasicBlock x [2, 2, 2, 2]), {size}, "
                 f"{'CIFAR stem' if mdl.cifar_stem else 'ImageNet stem'}, {norm}")
    for scenario in cfg.scenarios:
        lines.append(f"scenario   {scenario}: {SCENARIO_NAMES[scenario]}")
        if cfg.uses_lora:
            if n_tasks is None:
                lines.append("           LoRA targets: resolved once the artifact's task count is known")
            else:
                names = lora_target_names(cfg.lora, n_tasks, scenario)
                lines.append(f"           LoRA rank {cfg.lora.rank}, alpha {cfg.lora.alpha:g} (scale "
                             f"{cfg.lora.alpha / cfg.lora.rank:g}) on {len(names)} modules: {', '.join(names)}")
    w = cfg.wake
    lines.append(f"wake       {w.optimizer} lr {w.lr:g}, {w.epochs} epoch(s) per task, batches of {w.batch_size} new"
                 + " samples" + (f" + {cfg.replay_n} replayed from L1" if cfg.replay_n else ""))
    if cfg.method in ("hal", "er"):
        lines.append(f"L1         {cfg.memory.policy} ring buffer, capacity {cfg.memory.capacity}; every wake batch is pushed")
    lines.append("sleep      " + _sleep_text(cfg))
    lines.append("per task   wake -> sleep (if scheduled) -> test every task: one row of the accuracy matrix")
    lines.append("metrics    accuracy matrix R[i][j], ACC, BWT, forgetting (circadian_core.metrics) per scenario")
    return "\n".join(lines)
