"""Classifier heads on frozen-backbone features: backprop, predictive coding, circadian.

``HEADS`` maps a registry name to its class and config dataclass; ``make_head(name, ...)``
builds one from a plain config dict (strict: unknown keys are errors naming the valid ones).
"""

from __future__ import annotations

from typing import Any

from circadian_core.config import ConfigError, from_dict
from circadian_vision.heads.backprop import BackpropConfig, BackpropHead
from circadian_vision.heads.base import Head, evaluate, fit, inference_latency
from circadian_vision.heads.circadian import CircadianConfig, CircadianHead
from circadian_vision.heads.predictive_coding import PredictiveCodingConfig, PredictiveCodingHead

HEADS: dict[str, tuple[type[Head], type]] = {
    "backprop": (BackpropHead, BackpropConfig),
    "predictive_coding": (PredictiveCodingHead, PredictiveCodingConfig),
    "circadian": (CircadianHead, CircadianConfig),
}


def make_head(name: str, in_dim: int, num_classes: int, config: dict[str, Any] | None = None, **kwargs: Any) -> Head:
    """Build head ``name`` with its config dict (keyword arguments go to the constructor)."""
    if name not in HEADS:
        raise ConfigError(f"unknown head {name!r}; heads: {', '.join(HEADS)}")
    cls, config_cls = HEADS[name]
    cfg = from_dict(config_cls, config or {}, where=f"heads.{name}")
    return cls(in_dim, num_classes, cfg, **kwargs)


__all__ = [
    "HEADS",
    "BackpropConfig",
    "BackpropHead",
    "CircadianConfig",
    "CircadianHead",
    "Head",
    "PredictiveCodingConfig",
    "PredictiveCodingHead",
    "evaluate",
    "fit",
    "inference_latency",
    "make_head",
]
