"""Shared core of the circadian monorepo.

Small, dependency-light helpers used by ``circadian_vision``, ``hal_sleep_wake`` and ``circadia``:
device choice, seeding, run records, continual-learning metrics, strict configs and datasets.
"""

from circadian_core.config import ConfigError, deep_merge, from_dict
from circadian_core.device import pick_device
from circadian_core.metrics import (
    accuracy_matrix_summary,
    average_accuracy,
    backward_transfer,
    forgetting,
    forward_transfer,
)
from circadian_core.record import RunRecord, StudyResult, read_record, write_json_atomic
from circadian_core.seeding import seed_everything

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "RunRecord",
    "StudyResult",
    "accuracy_matrix_summary",
    "average_accuracy",
    "backward_transfer",
    "deep_merge",
    "forgetting",
    "forward_transfer",
    "from_dict",
    "pick_device",
    "read_record",
    "seed_everything",
    "write_json_atomic",
]
