"""A toy artifact for the DVC tests (copied into the scratch repositories next to toy_study.py)."""

from __future__ import annotations

import json
from pathlib import Path


def build_prior(config: dict, *, out: Path, device: str, artifacts: dict) -> None:
    """A uniform class prior: its bytes depend on the config alone."""
    classes = int(config["classes"])
    Path(out).write_text(json.dumps({"prior": [1.0 / classes] * classes}, sort_keys=True) + "\n")
