"""The configuration of one hal_sleep_wake run: strict dataclasses, built with ``from_dict``.

Choices are ``Literal`` fields and ranges are ``bounded()`` fields, so ``circadian_core.config.from_dict``
rejects a wrong value before any compute, naming the key and what it accepts. Nothing here imports
torch, so the CLI's ``--dry-run`` can print a plan without it. The defaults are the ``base`` of
params.yaml's mini ``hal`` study (a test keeps them equal), except that the sequence is loaded
directly instead of from the ``hal_digits`` artifact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, get_args

from circadian_core.config import ConfigError, bounded, from_dict

Method = Literal["hal", "finetune", "joint", "ewc", "lwf", "er", "derpp", "agem"]
ScenarioName = Literal["task", "class", "one-head"]
METHODS: tuple[str, ...] = get_args(Method)
SCENARIOS: tuple[str, ...] = get_args(ScenarioName)
# every accuracy matrix a run records is one "view"; its metrics carry this prefix (declared once, here)
SCENARIO_PREFIX = {"task": "til", "class": "cil"}
SCENARIO_VIEWS: dict[str, tuple[str, ...]] = {"task": ("task",), "class": ("class",), "one-head": ("class", "task")}
SCENARIO_NAMES = {
    "task": "task-incremental (per-task heads, task id given at test time)",
    "class": "class-incremental (one shared head, logits of unseen classes masked)",
    "one-head": "Mammoth's protocol (one shared head trained over all logits; tested class- and task-incremental)",
}
LORA_GROUPS = ("stem", "blocks", "downsample", "classifier")
TINY = 1e-12  # bounded() is inclusive: "> 0" is ">= TINY"


@dataclasses.dataclass
class DatasetSpec:
    """One entry of ``data.sequence`` with loader arguments: ``{name: cifar10, args: {train_size: 5000}}``."""

    name: str
    args: dict[str, Any] = dataclasses.field(default_factory=dict)  # keywords of circadian_core.datasets.load_dataset


@dataclasses.dataclass
class DataConfig:
    # a pipeline artifact (listed under the study's needs) that holds the task sequence; when set, the
    # sequence keys below are the artifact's business (its config in params.yaml) and are not read here
    artifact: str | None = None
    # datasets of circadian_core.datasets, in order: a name, or {name, args}. A loader that returns a task
    # list (split_digits) gives its tasks; any other dataset is one task, or several with classes_per_task
    sequence: list[str | DatasetSpec] = dataclasses.field(default_factory=lambda: ["split_digits"])
    classes_per_task: int | None = bounded(None, low=1)  # split each dataset into tasks of this many classes
    # loader arguments for every image dataset of the sequence (not task lists such as split_digits); an entry's
    # own args win. Seeded class-stratified subsets (None: all), the draw's seed, the data folder (None: default)
    train_size: int | None = bounded(None, low=1)
    test_size: int | None = bounded(None, low=1)
    subset_seed: int = bounded(0, low=0)
    root: str | None = None
    image_size: int | None = bounded(None, low=1)  # zero-pad every image (centred) to this size (MNIST 28 -> 32)
    channels: int | None = bounded(None, low=1)  # grey images repeated to this many channels (1 -> 3)
    crop_pad: int = bounded(1, low=0)  # random-translate augmentation: pad by this many pixels, crop back (0: off)
    pad_mode: Literal["reflect", "zeros"] = "reflect"  # zeros = torchvision's RandomCrop(padding=p), Mammoth's
    flip: bool = False  # random horizontal flips (off for digits)
    mean: list[float] = dataclasses.field(default_factory=lambda: [0.5])  # per channel (one value: every channel)
    std: list[float] = dataclasses.field(default_factory=lambda: [0.25])


@dataclasses.dataclass
class ModelConfig:
    # resnet18: torchvision's ResNet-18 (LoRA targets its layers; HAL needs it). mlp: Mammoth's MNIST network
    # (flattened image, two ReLU layers of ``hidden`` units, the classifier) for its Seq-MNIST protocol
    arch: Literal["resnet18", "mlp"] = "resnet18"
    hidden: int = bounded(100, low=1)  # mlp only: units per hidden layer (Mammoth's MNISTMLP: 100)
    width: int = bounded(8, low=1)  # channels of the first stage; 64 is torchvision's ResNet-18
    cifar_stem: bool = True  # 3x3 stride-1 first conv and no max-pool (for 32x32 and smaller images)
    # torchvision's norm_layer: "batch" (its default) or "group" (GroupNorm with ``norm_groups`` groups: no
    # running statistics, so a frozen base is really frozen and tiny runs are not hostage to BN's lag)
    norm: Literal["batch", "group"] = "group"
    norm_groups: int = bounded(4, low=1)


@dataclasses.dataclass
class LoRAConfig:
    rank: int = bounded(4, low=1)
    alpha: float = bounded(8.0, low=TINY)
    # groups (stem, blocks, downsample, classifier) and/or exact module names, e.g. "layer4.1.conv2"
    targets: list[str] = dataclasses.field(default_factory=lambda: list(LORA_GROUPS))
    # weight: W + (alpha/r) B A computed once per forward, one conv (fast); peft: peft's LoRA layers
    # (the base conv plus two adapter convs per layer; kept for the side-by-side benchmark)
    impl: Literal["weight", "peft"] = "weight"


@dataclasses.dataclass
class MemoryConfig:
    """L1, the buffer every replaying method uses (hal, er, derpp, agem), under one policy."""

    capacity: int = bounded(200, low=1)
    policy: Literal["reservoir", "fifo"] = "reservoir"
    replay_n: int = bounded(32, low=0)  # buffered samples per wake step (hal, er; derpp and agem: each draw)
    # entropy-aware compression at the end of every task, for every method with a buffer: when L1 is at
    # least compress_at full, keep ``keep * capacity`` samples, an equal share per class, most important first.
    # Off by default: the freed half fills with the next task, so replay leans towards the newest classes
    compress: bool = False
    compress_at: float = bounded(0.9, low=0.0, high=1.0)
    keep: float = bounded(0.5, low=TINY, high=1.0)
    importance: Literal["loss", "entropy", "grad_norm"] = "loss"


@dataclasses.dataclass
class WakeConfig:
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = bounded(0.01, low=TINY)
    momentum: float = bounded(0.0, low=0.0, high=1.0)  # sgd
    weight_decay: float = bounded(0.0, low=0.0)
    batch_size: int = bounded(32, low=1)  # new samples per step
    epochs: int = bounded(5, low=1)  # passes over each task's training set


@dataclasses.dataclass
class SleepConfig:
    """A sleep bundles four changes; each has its own switch (compression is L1's policy: ``memory``)."""

    schedule: Literal["task", "steps"] = "task"  # end of every task | every ``every_steps`` wake steps
    every_steps: int = bounded(0, low=0)
    nrem: bool = True  # merge LoRA into the base, W <- W + s (alpha/r) B A, and reset the adapters
    scale: float = bounded(1.0, low=0.0)  # s (1.0 = the paper's formula)
    reset_optimizer: bool = True  # the wake optimizer restarts with a clean state
    rem: bool = True  # distil on dreams from L1 (and cross-entropy on real buffered samples)


@dataclasses.dataclass
class REMConfig:
    dream: Literal["mixup", "excite", "mixup+excite"] = "mixup"
    temperature: float = bounded(2.0, low=TINY)  # dream temperature of the distillation targets
    steps: int = bounded(5, low=0)  # optimizer steps of REM per sleep (a fresh batch of dreams each)
    batch_size: int = bounded(32, low=1)
    optimizer: Literal["adamw", "sgd"] = "adamw"  # REM's own optimizer, fresh at every sleep
    lr: float = bounded(0.001, low=TINY)
    momentum: float = bounded(0.0, low=0.0, high=1.0)
    weight_decay: float = bounded(0.0, low=0.0)
    ce_weight: float = bounded(1.0, low=0.0)  # cross-entropy on real buffered samples, beside the distillation
    ce_batch: int = bounded(32, low=1)
    excite_steps: int = bounded(2, low=0)  # excite: signed-gradient steps raising the teacher's logit of the class
    excite_lr: float = bounded(0.1, low=0.0)  # step size, in normalized input units


@dataclasses.dataclass
class EWCConfig:
    strength: float = bounded(1000.0, low=0.0)  # lambda in (lambda/2) sum_t sum_i F_t,i (theta_i - theta*_t,i)^2
    fisher_samples: int = bounded(64, low=1)  # training samples of the finished task for its empirical Fisher
    fisher_batch: int = bounded(64, low=1)  # per-sample gradients computed this many at a time (torch.func.vmap)


@dataclasses.dataclass
class LwFConfig:
    """Learning without Forgetting as Mammoth runs it (head warm-up, then distillation of the old model)."""

    alpha: float = bounded(3.0, low=0.0)  # weight of the distillation term (Mammoth seq-cifar10: 3.0)
    temperature: float = bounded(2.0, low=TINY)
    warmup_epochs: int | None = bounded(None, low=0)  # new head trained on frozen features first (None: wake.epochs)


@dataclasses.dataclass
class DERConfig:
    """DER++ (Buzzega et al. 2020): logit matching (alpha, MSE) and labels (beta, CE) on two buffer draws."""

    alpha: float = bounded(0.1, low=0.0)
    beta: float = bounded(0.5, low=0.0)
    # False: three forward passes (new batch, each L1 draw), as Mammoth; True: one forward of all three, so
    # BatchNorm normalizes them as one batch (as ER does) - a diagnostic of BatchNorm's share in DER++ vs ER
    one_forward: bool = False


@dataclasses.dataclass
class HALConfig:
    method: Method = "hal"  # one file per method: hal_sleep_wake/methods/<method>.py
    scenarios: list[ScenarioName] = dataclasses.field(default_factory=lambda: ["task", "class"])
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    lora: LoRAConfig = dataclasses.field(default_factory=LoRAConfig)
    memory: MemoryConfig = dataclasses.field(default_factory=MemoryConfig)
    wake: WakeConfig = dataclasses.field(default_factory=WakeConfig)
    sleep: SleepConfig = dataclasses.field(default_factory=SleepConfig)
    rem: REMConfig = dataclasses.field(default_factory=REMConfig)
    ewc: EWCConfig = dataclasses.field(default_factory=EWCConfig)
    lwf: LwFConfig = dataclasses.field(default_factory=LwFConfig)
    der: DERConfig = dataclasses.field(default_factory=DERConfig)
    eval_batch: int = bounded(1024, low=1)
    channels_last: bool = True  # CUDA only
    autocast: bool = True  # bf16 autocast, CUDA only

    # ---- what the method turns on ----------------------------------------------------------
    @property
    def uses_lora(self) -> bool:
        return self.method == "hal"

    @property
    def sleeps(self) -> bool:
        s = self.sleep
        return self.method == "hal" and (s.nrem or s.rem or s.reset_optimizer)


def _check(cfg: HALConfig) -> None:
    """What a single field's type and range cannot say."""
    if not cfg.scenarios or len(set(cfg.scenarios)) != len(cfg.scenarios):
        raise ConfigError(f"hal.scenarios: {cfg.scenarios!r} is invalid; use a non-empty list, each of "
                          f"{', '.join(SCENARIOS)} at most once")
    views = views_of(cfg.scenarios)
    if len(set(views)) != len(views):
        raise ConfigError(f"hal.scenarios: {cfg.scenarios!r} records the same accuracy view twice; 'one-head' "
                          "already gives task- and class-incremental accuracy, so run it alone")
    if not cfg.data.sequence:
        raise ConfigError("hal.data.sequence: empty; list at least one dataset (e.g. [split_digits])")
    if len(cfg.data.mean) != len(cfg.data.std) or any(s <= 0 for s in cfg.data.std):
        raise ConfigError(f"hal.data.mean/std: {cfg.data.mean} / {cfg.data.std}; give one positive std per mean")
    if cfg.model.norm == "group" and cfg.model.width % cfg.model.norm_groups:
        raise ConfigError(f"hal.model.norm_groups: {cfg.model.norm_groups} does not divide model.width "
                          f"{cfg.model.width}; use a divisor of the width")
    if cfg.model.arch != "resnet18" and cfg.uses_lora:
        raise ConfigError(f"hal.model.arch: {cfg.model.arch!r} with method {cfg.method!r}; its LoRA adapters and "
                          "sleeps target ResNet-18's layers, so use arch: resnet18 (or a method without LoRA)")
    if not cfg.lora.targets:
        raise ConfigError("hal.lora.targets: empty; name at least one group or module (e.g. [blocks])")
    if cfg.sleep.schedule == "steps" and cfg.sleep.every_steps < 1:
        raise ConfigError("hal.sleep.every_steps: must be a positive step count with schedule: steps")


def load_config(config: Mapping[str, Any] | HALConfig | None = None) -> HALConfig:
    """A validated :class:`HALConfig` from a dict (unknown keys are errors that name the valid ones)."""
    cfg = config if isinstance(config, HALConfig) else from_dict(HALConfig, config or {}, where="hal")
    _check(cfg)
    return cfg


def views_of(scenarios: list[str]) -> list[str]:
    """The accuracy views (``task``, ``class``) a list of scenarios records, in order."""
    return [v for s in scenarios for v in SCENARIO_VIEWS[s]]


def dataset_name(entry: str | DatasetSpec) -> str:
    return entry if isinstance(entry, str) else entry.name
