"""Run one (study, variant, seed) cell: seed, time, call the study, write its record atomically."""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from circadian_core.config import ConfigError
from circadian_core.contract import Contract, contract_for
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
from circadian_core.seeding import check_seed, seed_everything

StudyFn = Callable[..., StudyResult]


def resolve_entry(entry: str | Callable[..., Any]) -> Any:
    """``"package.module:attr"`` -> that attribute (callables pass through).

    The one resolver of ``module:attr`` strings in the repository (study entries, artifact
    entries, backends); its errors name the entry and the fix.
    """
    if callable(entry):
        return entry
    module_name, sep, attr = entry.partition(":")
    if not sep or not module_name or not attr:
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
        raise AttributeError(f"{module_name!r} has no attribute {attr!r} (entry {entry!r})") from err


def set_threads(n: int | None) -> None:
    """Cap CPU threads of this process at ``n`` (BLAS/OpenMP pools and torch's intra-op pool).

    The one place a cell's thread count is applied (params.yaml ``resources.threads``): the
    environment variables reach pools not started yet (numpy, torch at import), and a torch that
    is already imported is set directly. ``None`` leaves everything as it is.
    """
    if not n:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def require_artifact(artifacts: Mapping[str, Path], name: str | None, *, study: str, key: str) -> Path:
    """The path of artifact ``name`` that the cell declared in ``needs``; one error naming the fix otherwise."""
    if not name:
        raise ConfigError(f"{study}: config key {key!r} must name an artifact")
    if name not in artifacts:
        have = ", ".join(sorted(artifacts)) or "none"
        raise ConfigError(
            f"{study}: {key} = {name!r} is not among the artifacts this study lists in `needs` ({have}); "
            f"add {name!r} to the study's `needs` in params.yaml"
        )
    return Path(artifacts[name])


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
    threads: int | None = None,
) -> RunRecord:
    """Run ``entry(config, seed=, device=, workdir=, artifacts=)`` and write its :class:`RunRecord`.

    A study function takes the cell's config dict and keyword arguments ``seed`` (already applied
    by :func:`seed_everything`), ``device`` (resolved), ``workdir`` (a per-cell scratch folder for
    checkpoints, or None) and ``artifacts`` (name -> path of the inputs it declared in ``needs``),
    and returns a :class:`StudyResult`. The record lands at ``out`` only when the study finished:
    a killed run leaves no partial file.

    When the entry's module declares a ``CONTRACT`` (:mod:`circadian_core.contract`), the config is
    checked against its settings before any compute and the returned metrics against its metric
    declaration before anything is written; the record carries the contract's version.
    ``threads`` caps the CPU threads of the cell (:func:`set_threads`).
    """
    seed_key = f"params.yaml studies.{study}.seeds"
    check_seed(seed, seed_key)
    set_threads(threads)
    fn = resolve_entry(entry)
    contract: Contract | None = contract_for(entry) if isinstance(entry, str) else None
    if contract is not None and contract.settings is not None:
        contract.settings_of(config, where=f"{study}/{variant}")
    resolved_device = pick_device(device)
    seed_everything(seed, only_loaded=True, where=seed_key)
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
    if contract is not None:
        problems = contract.check_metrics(result.metrics)
        if problems:
            raise ConfigError(f"{study}/{variant}/seed{seed}: {problems[0]} (contract {contract.name!r}); "
                              "the study and its CONTRACT disagree: fix one of them")
    timings = {"wall_s": wall, **{k: float(v) for k, v in result.timings.items()}}
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
        contract_version=contract.version if contract is not None else None,
    )
    write_json_atomic(out, record.to_json())
    return record
