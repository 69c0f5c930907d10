"""The NumPy networks of the circadian predictive coding study, by name.

``NETS``: ``backprop`` -> :class:`BackpropMLP`, ``predictive_coding`` -> :class:`PredictiveCodingNet`,
``circadian`` -> :class:`CircadianNet`. ``make_net(name, input_dim, num_classes, config, seed=)``
builds one from a config dict (strict: unknown keys are errors naming the valid ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from circadian_vision.nets._common import NumpyNet
from circadian_vision.nets.backprop_mlp import BackpropConfig, BackpropMLP
from circadian_vision.nets.circadian import CircadianConfig, CircadianNet
from circadian_vision.nets.predictive_coding import PredictiveCodingConfig, PredictiveCodingNet

NETS: dict[str, type[NumpyNet]] = {
    "backprop": BackpropMLP,
    "predictive_coding": PredictiveCodingNet,
    "circadian": CircadianNet,
}


def make_net(
    name: str, input_dim: int, num_classes: int, config: Mapping[str, Any] | None = None, *, seed: int = 0
) -> NumpyNet:
    """Build network ``name`` with its config dataclass made from ``config``."""
    from circadian_core.config import ConfigError, from_dict

    if name not in NETS:
        raise ConfigError(f"unknown network {name!r}; networks: {', '.join(NETS)}")
    cls = NETS[name]
    cfg = from_dict(cls.config_class, config or {}, where=name)  # type: ignore[attr-defined]
    return cls(input_dim, num_classes, cfg, seed=seed)  # type: ignore[call-arg]


__all__ = [
    "NETS",
    "BackpropConfig",
    "BackpropMLP",
    "CircadianConfig",
    "CircadianNet",
    "NumpyNet",
    "PredictiveCodingConfig",
    "PredictiveCodingNet",
    "make_net",
]
