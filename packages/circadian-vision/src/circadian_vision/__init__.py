"""circadian_vision: circadian predictive coding, its baselines, and the plastic brain family.

* :mod:`circadian_vision.nets` - the NumPy networks (backprop MLP, predictive coding, circadian);
  ``make_net(name, ...)`` from the registry ``NETS``.
* :mod:`circadian_vision.mechanisms` - one file per circadian mechanism (chemicals, gating, reward,
  trigger, budget, split, prune, homeostasis, replay, rollback), shared by NumPy nets and torch heads.
* :mod:`circadian_vision.heads` - torch heads on frozen backbone features; ``make_head`` / ``HEADS``.
* :mod:`circadian_vision.backbones`, :mod:`circadian_vision.features` - frozen backbones and cached features.
* :mod:`circadian_vision.plastic` - sparse neuromodulated blocks, kNN episodic memory, triarchic brain.

The names below load lazily, so ``import circadian_vision`` imports neither torch nor the studies.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "NETS": "nets",
    "make_net": "nets",
    "HEADS": "heads",
    "make_head": "heads",
    "BackpropHead": "heads",
    "PredictiveCodingHead": "heads",
    "CircadianHead": "heads",
    "Backbone": "backbones",
    "build_backbone": "backbones",
    "load_backbone": "backbones",
    "cached_features": "features",
    "load_features": "features",
    "PlasticBrain": "plastic",
    "PlasticBrainConfig": "plastic",
    "TriarchicBrain": "plastic",
    "TriarchicConfig": "plastic",
    "NeuromodulatedBlock": "plastic",
    "BlockConfig": "plastic",
    "EpisodicMemoryBank": "plastic",
    "PretrainedEyes": "plastic",
    "RandomProjectionEyes": "plastic",
    "NaiveLinearHead": "plastic",
    "PlasticTrainer": "plastic",
    "PhaseConfig": "plastic",
    "TrainingHistory": "plastic",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'circadian_vision' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
