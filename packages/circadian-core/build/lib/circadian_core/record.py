"""One JSON record per run: config, metrics, history, timings, device, versions and git SHA."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 2  # 2: contract_version and timings outside metrics
PRIVATE_MODE = 0o600

DEFAULT_PACKAGES = (
    "circadian-core",
    "circadian-vision",
    "hal-sleep-wake",
    "circadia",
    "numpy",
    "torch",
    "torchvision",
    "transformers",
    "peft",
    "mlx",
    "mlx-lm",
)


@dataclasses.dataclass
class StudyResult:
    """What a study's ``run`` function returns.

    ``metrics`` are flat scalar results (aggregated over seeds); ``history`` holds per-step or
    per-epoch series (lists of equal length per key, or a list of row dicts); ``info`` holds any
    other JSON-ready detail (accuracy matrices, neighbour lists, notes).
    """

    metrics: dict[str, float | None]
    history: dict[str, list[Any]] | list[dict[str, Any]] = dataclasses.field(default_factory=dict)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)  # seconds; never in metrics


@dataclasses.dataclass
class RunRecord:
    """The record of one (study, variant, seed) cell, as written to JSON."""

    study: str
    variant: str
    seed: int
    config: dict[str, Any]
    metrics: dict[str, float | None]
    history: dict[str, list[Any]] | list[dict[str, Any]]
    info: dict[str, Any]
    timings: dict[str, float]
    device: str
    versions: dict[str, str]
    git_sha: str | None
    host: dict[str, str]
    created: str
    contract_version: int | None = None
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths, dataclasses and non-finite floats to strict JSON (NaN -> null)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_json"):
        return _jsonable(obj.to_json())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    return obj


def _default_mode() -> int:
    """0666 under the process umask: what ``open(path, "w")`` would create."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_json_atomic(
    path: str | os.PathLike[str], obj: Any, *, private: bool = False, indent: int = 1, sort_keys: bool = False
) -> Path:
    """Write ``obj`` as strict JSON to ``path`` atomically: a fsynced temporary sibling, then a rename.

    A crash leaves either the old file or the new one, never a torn one, and no temporary file.
    NaN and infinities become null; numpy values, paths and dataclasses are converted. The file
    is created with the usual mode (0644 under a 022 umask), or 0600 when ``private`` (chat text).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, PRIVATE_MODE if private else _default_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(_jsonable(obj), fh, indent=indent, sort_keys=sort_keys, allow_nan=False, ensure_ascii=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run record written by :func:`write_json_atomic`, with a clear error when corrupt."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}: not a valid run record ({err}); delete it and rerun its cell"
        ) from err
    for key in ("study", "variant", "seed", "metrics"):
        if key not in data:
            raise ValueError(f"{path}: run record lacks {key!r}; delete it and rerun its cell")
    return data


def package_versions(names: tuple[str, ...] = DEFAULT_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (missing ones are left out)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def git_sha(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """The current commit (with ``-dirty`` when the tree has changes), or None outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def host_info() -> dict[str, str]:
    """Machine facts worth keeping beside a timing."""
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": str(os.cpu_count()),
    }
    torch = sys.modules.get("torch")  # only if the run used it: importing it here costs seconds
    if torch is not None:
        info["torch_threads"] = str(torch.get_num_threads())
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def benchmark_header(
    benchmark: str, command: str, device: str, *, load_before: float, started: float
) -> dict[str, Any]:
    """The fields every benchmark JSON starts with: what ran, where, how busy the machine was, how long.

    ``load_before`` is ``os.getloadavg()[0]`` and ``started`` a ``time.perf_counter()`` reading, both
    taken before the timed work; other processes on the machine disturb CPU timings, so say so.
    """
    torch = sys.modules.get("torch")
    on_cuda = torch is not None and device.startswith("cuda")
    return {
        "benchmark": benchmark,
        "command": command,
        "device": device,
        "device_name": torch.cuda.get_device_name() if on_cuda else cpu_name(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "cpu_count": os.cpu_count(),
        "load_average_1m_before": load_before,
        "load_average_1m_after": os.getloadavg()[0],
        "host": host_info(),
        "torch": torch.__version__ if torch is not None else None,
        "total_s": time.perf_counter() - started,
    }


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
