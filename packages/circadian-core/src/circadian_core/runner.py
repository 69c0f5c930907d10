"""Run one (study, variant, seed) cell: seed, time, call the study, write its record atomically."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from circadian_core.device import pick_device
from circadian_core.record import (
    RunRecord,
    StudyResult,
    git_sha,
    host_info,
    now_iso,
    package_versions,
    write_json_atomic,
)
from circadian_core.seeding import seed_everything

StudyFn = Callable[..., StudyResult]


def resolve_entry(entry: str | StudyFn) -> StudyFn:
    """``"package.module:function"`` -> the function (callables pass through)."""
    if callable(entry):
        return entry
    module_name, sep, attr = entry.partition(":")
    if not sep:
        raise ValueError(f"entry {entry!r} must look like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            f"cannot import {module_name!r} for entry {entry!r} ({err}); "
            "install the package that provides it (see README: make setup)"
        ) from err
    try:
        return getattr(module, attr)
    except AttributeError as err:
        raise AttributeError(f"{module_name!r} has no function {attr!r} (entry {entry!r})") from err


def run_cell(
    entry: str | StudyFn,
    config: Mapping[str, Any],
    *,
    study: str,
    variant: str,
    seed: int,
    out: str | Path,
    device: str = "auto",
    workdir: str | Path | None = None,
    artifacts: Mapping[str, Path] | None = None,
) -> RunRecord:
    """Run ``entry(config, seed=, device=, workdir=, artifacts=)`` and write its :class:`RunRecord`.

    A study function takes the cell's config dict and keyword arguments ``seed`` (already applied
    by :func:`seed_everything`), ``device`` (resolved), ``workdir`` (a per-cell scratch folder for
    checkpoints, or None) and ``artifacts`` (name -> path of the inputs it declared in ``needs``),
    and returns a :class:`StudyResult`. The record lands at ``out`` only when the study finished:
    a killed run leaves no partial file.
    """
    fn = resolve_entry(entry)
    resolved_device = pick_device(device)
    seed_everything(seed, only_loaded=True)
    t0 = time.perf_counter()
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    result = fn(
        dict(config),
        seed=seed,
        device=resolved_device,
        workdir=Path(workdir) if workdir is not None else None,
        artifacts=dict(artifacts or {}),
    )
    wall = time.perf_counter() - t0
    if not isinstance(result, StudyResult):
        raise TypeError(f"{entry!r} returned {type(result).__name__}, expected StudyResult")
    timings = {"wall_s": wall, **{k: float(v) for k, v in result.info.pop("timings", {}).items()}}
    record = RunRecord(
        study=study,
        variant=variant,
        seed=int(seed),
        config=dict(config),
        metrics=dict(result.metrics),
        history=result.history,
        info=result.info,
        timings=timings,
        device=resolved_device,
        versions=package_versions(),
        git_sha=git_sha(),
        host=host_info(),
        created=now_iso(),
    )
    write_json_atomic(out, record.to_json())
    return record
