"""The plastic brain family: sparse, locally learning brains on frozen eyes, and their curriculum.

* :class:`PretrainedEyes` (frozen ResNet-18 or a saved backbone), :class:`RandomProjectionEyes` (stand-in)
* :class:`NeuromodulatedBlock`: top-k sparse residual block with reward-modulated Hebbian learning,
  maturity protection, consolidation and neurogenesis (plastic and panic modes)
* :class:`EpisodicMemoryBank`: ring buffer of normalized keys read by kNN soft voting
* :class:`PlasticBrain`: eyes -> pluggable blocks -> norm -> memory
* :class:`TriarchicBrain`: sparse base with neurogenesis, protected core, decaying context
* :class:`NaiveLinearHead`: the fine-tuned linear baseline
* :class:`PlasticTrainer`, :class:`PhaseConfig`, :class:`TrainingHistory`; plots in ``plots``
"""

from circadian_vision.plastic.baseline import NaiveLinearConfig, NaiveLinearHead
from circadian_vision.plastic.block import BlockConfig, NeuromodulatedBlock
from circadian_vision.plastic.brain import PlasticBrain, PlasticBrainConfig
from circadian_vision.plastic.eyes import PretrainedEyes, RandomProjectionEyes
from circadian_vision.plastic.memory import EpisodicMemoryBank, Neighbours
from circadian_vision.plastic.trainer import Learner, PhaseConfig, PlasticTrainer, TrainingHistory
from circadian_vision.plastic.triarchic import TriarchicBrain, TriarchicConfig

__all__ = [
    "BlockConfig",
    "EpisodicMemoryBank",
    "Learner",
    "NaiveLinearConfig",
    "NaiveLinearHead",
    "Neighbours",
    "NeuromodulatedBlock",
    "PhaseConfig",
    "PlasticBrain",
    "PlasticBrainConfig",
    "PlasticTrainer",
    "PretrainedEyes",
    "RandomProjectionEyes",
    "TrainingHistory",
    "TriarchicBrain",
    "TriarchicConfig",
]
