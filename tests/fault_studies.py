"""Study and artifact entries that hit the faults users meet (tests/test_stage_errors.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from circadian_core.datasets import fetch
from circadian_core.record import StudyResult


def needs_dataset(config: dict, *, seed: int, device: str, workdir: Path | None, artifacts: dict) -> StudyResult:
    """Reads a checksummed download (absent or corrupt in the tests)."""
    fetch(config["url"], Path(config["file"]), config["sha256"], progress=False)
    return StudyResult(metrics={"x": 1.0})


def reads_blob(config: dict, *, seed: int, device: str, workdir: Path | None, artifacts: dict) -> StudyResult:
    """Reads its artifact as a hal cell reads hal_digits.npz."""
    with np.load(artifacts["blob"]) as data:
        return StudyResult(metrics={"x": float(data["x"].sum())})


def marks_it_ran(config: dict, *, seed: int, device: str, workdir: Path | None, artifacts: dict) -> StudyResult:
    Path(config["marker"]).write_text("ran")
    return StudyResult(metrics={"x": 1.0})


def write_blob(config: dict, *, out: Path, device: str, artifacts: dict) -> None:
    with open(out, "wb") as fh:
        np.savez(fh, x=np.arange(3))


def write_threads(config: dict, *, out: Path, device: str, artifacts: dict) -> None:
    out.write_text(os.environ.get("OMP_NUM_THREADS", "unset"))


def fails_midway(config: dict, *, out: Path, device: str, artifacts: dict) -> None:
    out.write_text("half")
    raise RuntimeError("the converter crashed")
