"""The configuration of one hal_sleep_wake run: strict dataclasses, built with ``from_dict``.

Nothing here imports torch, so the CLI's ``--dry-run`` can print a plan without it. The defaults are
the ``base`` of params.yaml's mini ``hal`` study (a test keeps them equal), except that the sequence
is loaded directly instead of from the ``hal_digits`` artifact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from circadian_core.config import ConfigError, from_dict

METHODS = ("hal", "finetune", "ewc", "er")
SCENARIOS = ("task", "class")
SCENARIO_NAMES = {
    "task": "task-incremental (per-task heads, task id given at test time)",
    "class": "class-incremental (one shared head, logits of unseen classes masked)",
}
SCENARIO_PREFIX = {"task": "til", "class": "cil"}
LORA_GROUPS = ("stem", "blocks", "downsample", "classifier")


@dataclasses.dataclass
class DataConfig:
    # a pipeline artifact (listed under the study's needs) that holds the task sequence; when set, the
    # sequence keys below are the artifact's business (its config in params.yaml) and are not read here
    artifact: str | None = None
    # datasets in order; "split_digits" expands into ``n_tasks`` tasks, every other name is one task
    sequence: list[str] = dataclasses.field(default_factory=lambda: ["split_digits"])
    n_tasks: int = 5  # split_digits only
    class_order_seed: int | None = None  # split_digits: None = digits 0,1 | 2,3 | ...
    train_size: int | None = None  # per downloaded dataset: seeded class-stratified subset (None: all)
    test_size: int | None = None
    subset_seed: int = 0
    root: str | None = None  # data folder (default: circadian_core's data root)
    crop_pad: int = 1  # random-translate augmentation: reflect-pad by this many pixels, crop back (0: off)
    flip: bool = False  # random horizontal flips (off for digits)


@dataclasses.dataclass
class ModelConfig:
    width: int = 8  # channels of the first stage; 64 is torchvision's ResNet-18, smaller = a narrow ResNet-18
    cifar_stem: bool = True  # 3x3 stride-1 first conv and no max-pool (for 32x32 and smaller images)
    # torchvision's norm_layer: "batch" (its default) or "group" (GroupNorm with ``norm_groups`` groups: no
    # running statistics, so a frozen base is really frozen and tiny runs are not hostage to BN's lag)
    norm: str = "group"
    norm_groups: int = 4


@dataclasses.dataclass
class LoRAConfig:
    rank: int = 4
    alpha: float = 8.0
    dropout: float = 0.0
    # groups (stem, blocks, downsample, classifier) and/or exact module names, e.g. "layer4.1.conv2"
    targets: list[str] = dataclasses.field(default_factory=lambda: list(LORA_GROUPS))


@dataclasses.dataclass
class MemoryConfig:
    """L1: the task-batch ring buffer."""

    capacity: int = 200
    policy: str = "reservoir"  # reservoir | fifo
    replay_n: int = 32  # buffered samples mixed into every wake step (hal and er)
    compress: bool = True  # entropy-aware compression during sleep
    compress_at: float = 0.9  # ... when the buffer is at least this full
    keep: float = 0.5  # ... keeping this fraction of the capacity, equal shares per task, most important first
    importance: str = "loss"  # loss | entropy | grad_norm (norm of the loss gradient w.r.t. the logits)


@dataclasses.dataclass
class WakeConfig:
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 0.01
    momentum: float = 0.9  # sgd
    weight_decay: float = 0.0
    batch_size: int = 32  # new samples per step (replay_n more come from L1)
    epochs: int = 1  # passes over each task's training set


@dataclasses.dataclass
class SleepConfig:
    schedule: str = "task"  # task: sleep at the end of every task | steps: every ``every_steps`` wake steps
    every_steps: int = 0
    nrem: bool = True  # merge LoRA into the base, W <- W + s (alpha/r) B A, then reset adapters and optimizer
    scale: float = 1.0  # s (1.0 = the paper's formula)
    rem: bool = True  # distil the merged model on dreams from L1


@dataclasses.dataclass
class REMConfig:
    dream: str = "mixup"  # mixup | excite | mixup+excite
    temperature: float = 2.0  # dream temperature of the distillation targets
    steps: int = 5  # optimizer steps of REM per sleep (a fresh batch of dreams each)
    batch_size: int = 32
    lr: float | None = None  # None: the wake learning rate; optimizer and its other settings as in wake
    excite_steps: int = 2  # excite: signed-gradient steps that raise the teacher's logit of the dream's class
    excite_lr: float = 0.1  # step size, in normalized input units


@dataclasses.dataclass
class EWCConfig:
    strength: float = 1000.0  # lambda in (lambda/2) sum_t sum_i F_t,i (theta_i - theta*_t,i)^2
    fisher_samples: int = 64  # training samples of the finished task for its empirical Fisher
    fisher_batch: int = 64  # per-sample gradients computed this many at a time (torch.func.vmap)


@dataclasses.dataclass
class HALConfig:
    method: str = "hal"  # hal | finetune | ewc | er
    scenarios: list[str] = dataclasses.field(default_factory=lambda: list(SCENARIOS))
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    lora: LoRAConfig = dataclasses.field(default_factory=LoRAConfig)
    memory: MemoryConfig = dataclasses.field(default_factory=MemoryConfig)
    wake: WakeConfig = dataclasses.field(default_factory=WakeConfig)
    sleep: SleepConfig = dataclasses.field(default_factory=SleepConfig)
    rem: REMConfig = dataclasses.field(default_factory=REMConfig)
    ewc: EWCConfig = dataclasses.field(default_factory=EWCConfig)
    eval_batch: int = 1024
    threads: int = 1  # CPU threads of one cell
    channels_last: bool = True  # CUDA only
    autocast: bool = True  # bf16 autocast, CUDA only

    # ---- what the method turns on ----------------------------------------------------------
    @property
    def uses_lora(self) -> bool:
        return self.method == "hal"

    @property
    def sleeps(self) -> bool:
        return self.method == "hal" and (self.sleep.nrem or self.sleep.rem)

    @property
    def replay_n(self) -> int:
        """Replay is part of hal and er; plain fine-tuning and EWC never replay."""
        return self.memory.replay_n if self.method in ("hal", "er") else 0

    @property
    def uses_ewc(self) -> bool:
        return self.method == "ewc"


def _check(cfg: HALConfig) -> None:
    def bad(where: str, value: Any, allowed: tuple[str, ...] | str) -> ConfigError:
        choices = allowed if isinstance(allowed, str) else "one of " + ", ".join(allowed)
        return ConfigError(f"hal.{where}: {value!r} is invalid; use {choices}")

    if cfg.method not in METHODS:
        raise bad("method", cfg.method, METHODS)
    if not cfg.scenarios or any(s not in SCENARIOS for s in cfg.scenarios):
        raise bad("scenarios", cfg.scenarios, "a non-empty list of " + ", ".join(SCENARIOS))
    if len(set(cfg.scenarios)) != len(cfg.scenarios):
        raise bad("scenarios", cfg.scenarios, "each scenario once")
    if not cfg.data.sequence:
        raise bad("data.sequence", cfg.data.sequence, "a non-empty list of dataset names")
    if cfg.model.width < 1:
        raise bad("model.width", cfg.model.width, "a positive channel count")
    if cfg.model.norm not in ("batch", "group"):
        raise bad("model.norm", cfg.model.norm, ("batch", "group"))
    if cfg.model.norm == "group" and (cfg.model.norm_groups < 1 or cfg.model.width % cfg.model.norm_groups):
        raise bad("model.norm_groups", cfg.model.norm_groups, "a divisor of model.width")
    if cfg.lora.rank < 1 or cfg.lora.alpha <= 0:
        raise bad("lora", (cfg.lora.rank, cfg.lora.alpha), "rank >= 1 and alpha > 0")
    if not cfg.lora.targets:
        raise bad("lora.targets", cfg.lora.targets, "at least one group or module name")
    m = cfg.memory
    if m.policy not in ("reservoir", "fifo"):
        raise bad("memory.policy", m.policy, ("reservoir", "fifo"))
    if m.importance not in ("loss", "entropy", "grad_norm"):
        raise bad("memory.importance", m.importance, ("loss", "entropy", "grad_norm"))
    if m.capacity < 1 or m.replay_n < 0:
        raise bad("memory", (m.capacity, m.replay_n), "capacity >= 1 and replay_n >= 0")
    if not 0.0 < m.keep <= 1.0:
        raise bad("memory.keep", m.keep, "a fraction in (0, 1]")
    if cfg.wake.optimizer not in ("sgd", "adamw"):
        raise bad("wake.optimizer", cfg.wake.optimizer, ("sgd", "adamw"))
    if cfg.wake.batch_size < 1 or cfg.wake.epochs < 1:
        raise bad("wake", (cfg.wake.batch_size, cfg.wake.epochs), "batch_size >= 1 and epochs >= 1")
    if cfg.sleep.schedule not in ("task", "steps"):
        raise bad("sleep.schedule", cfg.sleep.schedule, ("task", "steps"))
    if cfg.sleep.schedule == "steps" and cfg.sleep.every_steps < 1:
        raise bad("sleep.every_steps", cfg.sleep.every_steps, "a positive step count with schedule: steps")
    if cfg.rem.dream not in ("mixup", "excite", "mixup+excite"):
        raise bad("rem.dream", cfg.rem.dream, ("mixup", "excite", "mixup+excite"))
    if cfg.rem.temperature <= 0:
        raise bad("rem.temperature", cfg.rem.temperature, "a positive temperature")
    if cfg.data.crop_pad < 0:
        raise bad("data.crop_pad", cfg.data.crop_pad, "0 (off) or a positive pixel count")


def load_config(config: Mapping[str, Any] | HALConfig | None = None) -> HALConfig:
    """A validated :class:`HALConfig` from a dict (unknown keys are errors that name the valid ones)."""
    cfg = config if isinstance(config, HALConfig) else from_dict(HALConfig, config or {}, where="hal")
    _check(cfg)
    return cfg
