"""The plan of a run, as text, from its configuration alone: no data is read and no model is built."""

from __future__ import annotations

from hal_sleep_wake.config import SCENARIO_NAMES, DatasetSpec, HALConfig, dataset_name
from hal_sleep_wake.layout import lora_target_names

DATASET_CLASSES = {"cifar10": 10, "cifar100": 100, "mnist": 10, "permuted_mnist": 10, "fashion_mnist": 10,
                   "svhn": 10, "digits": 10, "synthetic-cifar10": 10, "synthetic-cifar100": 100}
METHOD_TEXT = {  # one line per registered method (a test keeps this equal to the registry)
    "hal": "hal: wake trains LoRA adapters only (ResNet base, norm layers and heads frozen), replay from L1",
    "finetune": "finetune: every parameter trains on the current task, no replay (SGD fine-tuning, lower bound)",
    "joint": "joint: a fresh network trains on all tasks together after the last one (upper bound)",
    "ewc": "ewc: every parameter trains with the EWC penalty, lambda={ewc}",
    "lwf": "lwf: Learning without Forgetting, head warm-up then distillation at T={lwf_t}, alpha={lwf_a}",
    "er": "er: every parameter trains with replay from L1",
    "derpp": "derpp: DER++, replay with logit matching (alpha={der_a}) and labels (beta={der_b})",
    "agem": "agem: A-GEM, the gradient projected away from increasing the loss on L1 samples",
}
USES_MEMORY = ("hal", "er", "derpp", "agem")


def task_layout(cfg: HALConfig) -> list[tuple[str, int]] | None:
    """(task name, classes) per task (0: unknown until loaded), or None when the sequence lives in an artifact."""
    if cfg.data.artifact is not None:
        return None
    tasks: list[tuple[str, int]] = []
    for entry in cfg.data.sequence:
        name = dataset_name(entry)
        if name == "split_digits":
            n = int(entry.args.get("n_tasks", 5)) if isinstance(entry, DatasetSpec) else 5
            tasks += [(f"split_digits task {t}", 10 // n) for t in range(n)]
            continue
        k = DATASET_CLASSES.get(name, 0)
        per = cfg.data.classes_per_task
        if per and k:
            tasks += [(f"{name} task {t}", per) for t in range(k // per)]
        else:
            tasks.append((name, k))
    return tasks


def _sleep_text(cfg: HALConfig) -> str:
    if not cfg.sleeps:
        return "never (no sleep)"
    s = cfg.sleep
    when = "at the end of every task" if s.schedule == "task" else f"every {s.every_steps} wake steps"
    parts = []
    if s.nrem:
        parts.append(f"NREM: W <- W + {s.scale:g} * (alpha/r) B A on every adapted layer, adapters reset "
                     "(Kaiming A, zero B)")
    if s.rem:
        r = cfg.rem
        parts.append(f"REM: {r.steps} steps x {r.batch_size} {r.dream} dreams from L1 at temperature {r.temperature:g}, "
                     f"{r.optimizer} lr {r.lr:g}, plus {r.ce_weight:g} x cross-entropy on {r.ce_batch} real buffered "
                     "samples; old tasks: the snapshot of the previous sleep over its own classes, current task: "
                     "the awake model" + ("; merged exactly" if s.nrem else ""))
    if s.reset_optimizer:
        parts.append("the wake optimizer restarts with a clean state")
    return when + "\n" + "\n".join("    - " + p for p in parts)


def plan_text(cfg: HALConfig) -> str:
    tasks = task_layout(cfg)
    n_tasks = len(tasks) if tasks else None
    lines = ["hal_sleep_wake plan (nothing loaded, no model built)"]
    method = METHOD_TEXT[cfg.method].format(ewc=f"{cfg.ewc.strength:g}", lwf_t=f"{cfg.lwf.temperature:g}",
                                            lwf_a=f"{cfg.lwf.alpha:g}", der_a=f"{cfg.der.alpha:g}",
                                            der_b=f"{cfg.der.beta:g}")
    lines.append(f"method     {method}")
    if tasks is None:
        lines.append(f"data       task sequence from artifact {cfg.data.artifact!r}")
    else:
        lines.append("data       " + " -> ".join(f"{name} ({k or '?'} classes)" for name, k in tasks))
    d = cfg.data
    lines.append(f"           augmentation on the device: translate +-{d.crop_pad}px ({d.pad_mode} padding)"
                 + (", horizontal flips" if d.flip else ""))
    mdl = cfg.model
    size = "torchvision's ResNet-18 widths" if mdl.width == 64 else f"narrow ResNet-18, width {mdl.width} (64 = standard)"
    norm = "BatchNorm" if mdl.norm == "batch" else f"GroupNorm({mdl.norm_groups})"
    lines.append(f"model      ResNet-18 (torchvision BasicBlock x [2, 2, 2, 2]), {size}, "
                 f"{'CIFAR stem' if mdl.cifar_stem else 'ImageNet stem'}, {norm}, random init")
    for scenario in cfg.scenarios:
        lines.append(f"scenario   {scenario}: {SCENARIO_NAMES[scenario]}")
        if cfg.uses_lora:
            if n_tasks is None:
                lines.append("           LoRA targets: resolved once the artifact's task count is known")
            else:
                names = lora_target_names(cfg.lora, n_tasks, scenario)
                lines.append(f"           LoRA ({cfg.lora.impl}) rank {cfg.lora.rank}, alpha {cfg.lora.alpha:g} "
                             f"(scale {cfg.lora.alpha / cfg.lora.rank:g}) on {len(names)} modules: {', '.join(names)}")
    w = cfg.wake
    replay = cfg.memory.replay_n if cfg.method in USES_MEMORY else 0
    lines.append(f"wake       {w.optimizer} lr {w.lr:g}, {w.epochs} epoch(s) per task, batches of {w.batch_size} new"
                 + " samples" + (f" + {replay} drawn from L1" + (" (twice: logits, labels)" if cfg.method == "derpp" else "")
                                if replay else ""))
    if cfg.method in USES_MEMORY:
        m = cfg.memory
        policy = (f"; at each task end, when >= {m.compress_at:.0%} full, compressed to {m.keep:.0%} of capacity, "
                  f"an equal share per class, highest {m.importance} first" if m.compress else "; never compressed")
        lines.append(f"L1         {m.policy} buffer, capacity {m.capacity}; every wake batch is pushed{policy}")
    lines.append("sleep      " + _sleep_text(cfg))
    lines.append("per task   wake -> sleep (if scheduled) -> L1 policy -> test every task: one row per accuracy matrix")
    lines.append("metrics    per view (task-IL til_, class-IL cil_): ACC, BWT, forgetting, accuracy right after learning")
    return "\n".join(lines)
