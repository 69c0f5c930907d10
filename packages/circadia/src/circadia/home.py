"""A circadia home: one user's memories, store, adapters, nightly logs and state.

```
<home>/
  memories.jsonl            every chat turn, secrets redacted (append-only, fsync, 0600)
  memories.quarantine.jsonl corrupt lines, with their line numbers (secrets redacted)
  state.json                current adapter / base model, nights run, memories consumed (atomic, 0600)
  store/                    the hippocampus (chromadb, or store-numpy/ for the fallback; 0700, files 0600)
  adapters/night-NNN/       accepted nightly adapters (never modified once written)
  adapters/rejected/        adapters a morning rolled back (kept for inspection)
  adapters/corrupt/         adapters found non-finite on disk (set aside, never loaded)
  models/night-NNN/         merged base weights (only with merge enabled)
  nights/night-NNN/         router.jsonl, dreams.jsonl, train.jsonl, eval_pre/post.json, night.json
  experiments.jsonl         one line per night: config, pre/post metrics, decision, timings
```

Modes: circadia creates the home and its folders 0700, but never changes the mode of a folder it
did not create (``--home`` may point at an existing shared folder); files holding chat text are
0600 wherever they are.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from circadian_core.config import ConfigError, from_dict
from circadian_core.record import write_json_atomic

PRIVATE_DIR = 0o700
SUBDIRS = ("adapters", "models", "nights")


def default_home() -> Path:
    return Path(os.environ.get("CIRCADIA_HOME") or Path.cwd() / "circadia-home").expanduser()


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0700; an existing folder is left as it is."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    for p in missing:
        os.chmod(p, PRIVATE_DIR)
    return path


class HomeError(ValueError):
    """Something in a home is unusable; the message names the file and the fix."""


@dataclass
class State:
    nights: int = 0  # nights that reached a decision (accepted or rolled back)
    attempts: int = 0  # every night started (incl. NaN aborts)
    current_adapter: str | None = None  # relative to home
    base_model: str | None = None  # None: the configured model; else a merged folder relative to home
    consumed_lines: int = 0  # memories.jsonl lines already slept on
    eval_cache: dict[str, Any] = field(default_factory=dict)  # harness/old-core results of the current model
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, obj: dict[str, Any], *, where: str = "state") -> State:
        """Strictly typed (unknown keys, written by a newer circadia, are ignored)."""
        if not isinstance(obj, dict):
            raise ConfigError(f"{where}: must be a JSON object")
        return from_dict(cls, {k: obj[k] for k in cls.__dataclass_fields__ if k in obj}, where=where)


class Home:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    # paths
    @property
    def memories(self) -> Path:
        return self.root / "memories.jsonl"

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    @property
    def adapters(self) -> Path:
        return self.root / "adapters"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def experiments(self) -> Path:
        return self.root / "experiments.jsonl"

    def store_dir(self, kind: str) -> Path:
        return self.root / ("store" if kind == "chroma" else "store-numpy")

    def night_dir(self, n: int) -> Path:
        return self.root / "nights" / f"night-{n:03d}"

    def adapter_dir(self, n: int) -> Path:
        return self.adapters / f"night-{n:03d}"

    def init(self) -> Home:
        """Create the home (0700) and its folders; an existing folder keeps its mode."""
        private_dir(self.root)
        for sub in SUBDIRS:
            private_dir(self.root / sub)
        return self

    # state
    def load_state(self) -> State:
        """The state, or one error naming ``state.json`` and the fix when it is unreadable."""
        if not self.state_path.exists():
            return State()
        fix = (f"restore it from a backup, or move it aside to start over from the base model "
               f"(adapters in {self.adapters} are kept; `circadia rollback N` then selects one)")
        try:
            obj = json.loads(self.state_path.read_text(encoding="utf-8"))
            return State.from_json(obj, where=str(self.state_path))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise HomeError(f"{self.state_path} is corrupt ({err}); {fix}") from err
        except ConfigError as err:
            raise HomeError(f"{err}; {fix}") from err

    def save_state(self, state: State) -> None:
        write_json_atomic(self.state_path, asdict(state), private=True)

    def resolve(self, rel: str | None) -> Path | None:
        return None if rel is None else (self.root / rel)

    def current_adapter(self) -> Path | None:
        return self.resolve(self.load_state().current_adapter)

    # crash leftovers and damaged files
    def clean_leftovers(self) -> list[str]:
        """Remove what a killed night left behind: temporary adapters and merges (any hidden entry
        of ``adapters/`` and ``models/``, e.g. ``.tmp-night-NNN`` or a backend's ``.*.merging``),
        and set aside an adapter that was renamed into place but never made current."""
        removed = []
        state = self.load_state()
        for folder in (self.adapters, self.models):
            if not folder.exists():
                continue
            for p in folder.iterdir():
                if not p.name.startswith("."):
                    continue
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(str(p))
        final = self.adapter_dir(state.nights + 1)
        if final.exists() and state.current_adapter != str(final.relative_to(self.root)):
            orphan = self.adapters / "orphaned" / f"{final.name}-{int(time.time())}"
            orphan.parent.mkdir(parents=True, exist_ok=True)
            final.rename(orphan)
            removed.append(str(final))
        merged = self.models / f"night-{state.nights + 1:03d}"
        if merged.exists() and state.base_model != str(merged.relative_to(self.root)):
            shutil.rmtree(merged, ignore_errors=True)
            removed.append(str(merged))
        return removed

    def recover(self, say: Callable[[str], None] | None = None, *, retention_days: int | None = None) -> list[str]:
        """What a night does first (under the lock, before any model is loaded): clean crash
        leftovers, check the current adapter (non-finite values: fall back to the last good
        version; truncated or unreadable: one error naming the file and the fix), and apply the
        day log's retention limit. Returns what was done, one line each."""
        from circadia.recovery import ensure_usable_model
        from circadia.retention import apply_retention

        done = [f"cleaned up after an interrupted night: {p}" for p in self.clean_leftovers()]
        done += ensure_usable_model(self)
        if retention_days is not None:
            dropped = apply_retention(self, retention_days)
            if dropped:
                done.append(f"retention: {dropped} turn(s) older than {retention_days} day(s) deleted from {self.memories}")
        for line in done:
            (say or (lambda _m: None))(line)
        return done


class HomeLock:
    """An exclusive OS lock (``flock`` through ``filelock``) on a home: one night, rollback or
    import at a time. The kernel drops it when the holder dies, so there is no stale lock to break
    and no race in breaking one."""

    def __init__(self, home: Home):
        from filelock import FileLock

        self.path = home.root / ".lock"
        self.owner = home.root / ".lock.owner"
        self._lock = FileLock(str(self.path), timeout=0)

    def __enter__(self) -> HomeLock:
        from filelock import Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            try:
                who = f"process {int(self.owner.read_text().strip())}"
            except (OSError, ValueError):
                who = "another process"
            raise HomeLock.Busy(f"{self.path.parent} is in use by {who} (a night is running); wait for it to finish") from None
        self.owner.write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc) -> None:
        self.owner.unlink(missing_ok=True)
        self._lock.release()

    class Busy(RuntimeError):
        """The home is locked by another process."""
