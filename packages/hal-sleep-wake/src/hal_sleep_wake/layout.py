"""Module names of the ResNet-18 that LoRA can target, derived without torch or a model.

The CLI's ``--dry-run`` lists them from here; a test checks them against a built model.
"""

from __future__ import annotations

from hal_sleep_wake.config import LORA_GROUPS, ConfigError, LoRAConfig

STAGES = 4
BLOCKS_PER_STAGE = 2  # ResNet-18: [2, 2, 2, 2]


def module_groups(n_tasks: int, scenario: str) -> dict[str, list[str]]:
    """The LoRA target groups of a HALResNet as module names, derived without building the model.

    ``scenario``: ``task`` (per-task heads ``fc.heads.<t>``) or a shared-head scenario (``fc``).
    """
    blocks = [
        f"layer{s}.{b}.conv{k}"
        for s in range(1, STAGES + 1)
        for b in range(BLOCKS_PER_STAGE)
        for k in (1, 2)
    ]
    downsample = [f"layer{s}.0.downsample.0" for s in range(2, STAGES + 1)]  # the 1x1 residual projections
    classifier = [f"fc.heads.{t}" for t in range(n_tasks)] if scenario == "task" else ["fc"]  # per-task heads
    return {"stem": ["conv1"], "blocks": blocks, "downsample": downsample, "classifier": classifier}


def lora_target_names(cfg: LoRAConfig, n_tasks: int, scenario: str) -> list[str]:
    """Resolve ``lora.targets`` (groups and/or exact module names) into exact module names (group order)."""
    groups = module_groups(n_tasks, scenario)
    known = [name for g in LORA_GROUPS for name in groups[g]]
    chosen: set[str] = set()
    for target in cfg.targets:
        if target in groups:
            chosen.update(groups[target])
        elif target in known:
            chosen.add(target)
        else:
            raise ConfigError(
                f"hal.lora.targets: {target!r} is neither a group ({', '.join(LORA_GROUPS)}) nor a conv/linear "
                f"module of the model (e.g. {known[1]!r}, {groups['downsample'][0]!r}, {groups['classifier'][0]!r})"
            )
    return [name for name in known if name in chosen]
