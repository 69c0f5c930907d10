"""A circadia home: one user's memories, store, adapters, nightly logs and state.

```
<home>/
  memories.jsonl            every chat turn (append-only, fsync, 0600); never rewritten
  memories.quarantine.jsonl corrupt lines, with their line numbers
  state.json                current adapter / base model, nights run, memories consumed (atomic)
  store/                    the hippocampus (chromadb, or store-numpy/ for the fallback)
  adapters/night-NNN/       accepted nightly adapters (never modified once written)
  adapters/rejected/        adapters a morning rolled back (kept for inspection)
  models/night-NNN/         merged base weights (only with merge enabled)
  nights/night-NNN/         router.jsonl, dreams.jsonl, train.jsonl, eval_pre/post.json, night.json
  experiments.jsonl         one line per night: config, pre/post metrics, decision, timings
```
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from circadia.jsonl import write_json_atomic


def default_home() -> Path:
    return Path(os.environ.get("CIRCADIA_HOME") or Path.cwd() / "circadia-home").expanduser()


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
    def from_json(cls, obj: dict[str, Any]) -> State:
        known = {k: obj[k] for k in cls.__dataclass_fields__ if k in obj}
        return cls(**known)


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
    def experiments(self) -> Path:
        return self.root / "experiments.jsonl"

    def store_dir(self, kind: str) -> Path:
        return self.root / ("store" if kind == "chroma" else "store-numpy")

    def night_dir(self, n: int) -> Path:
        return self.root / "nights" / f"night-{n:03d}"

    def adapter_dir(self, n: int) -> Path:
        return self.adapters / f"night-{n:03d}"

    def init(self) -> Home:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        return self

    # state
    def load_state(self) -> State:
        if not self.state_path.exists():
            return State()
        return State.from_json(json.loads(self.state_path.read_text()))

    def save_state(self, state: State) -> None:
        write_json_atomic(self.state_path, asdict(state), private=True)

    def resolve(self, rel: str | None) -> Path | None:
        return None if rel is None else (self.root / rel)

    def current_adapter(self) -> Path | None:
        return self.resolve(self.load_state().current_adapter)

    # crash leftovers
    def clean_leftovers(self) -> list[str]:
        """Remove what a killed night left behind (temporary adapters, half-written nights)."""
        removed = []
        state = self.load_state()
        if self.adapters.exists():
            for p in self.adapters.iterdir():
                if p.name.startswith(".tmp-"):
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(str(p))
            n = state.nights + 1
            final = self.adapter_dir(n)
            if final.exists() and state.current_adapter != str(final.relative_to(self.root)):
                orphan = self.adapters / "orphaned" / f"{final.name}-{int(time.time())}"
                orphan.parent.mkdir(parents=True, exist_ok=True)
                final.rename(orphan)
                removed.append(str(final))
        models = self.root / "models"
        if models.exists():
            for p in models.iterdir():
                if p.name.startswith(".tmp-"):
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(str(p))
        return removed


class HomeLock:
    """An exclusive lock on a home (one night or chat writer at a time); stale locks are broken."""

    def __init__(self, home: Home):
        self.path = home.root / ".lock"

    def __enter__(self) -> HomeLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                return self
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and _alive(pid):
                    raise RuntimeError(f"{self.path.parent} is in use by process {pid} (a night is running); "
                                       f"wait for it, or delete {self.path} if that process is gone") from None
                self.path.unlink(missing_ok=True)
        raise RuntimeError(f"cannot lock {self.path}")

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
