"""The state one night's phases share (:class:`NightContext`) and the night's log (:data:`Log`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circadia.backends.base import Backend, Example, TrainConfig, TrainReport
from circadia.config import NightConfig
from circadia.dreamer import DreamResult
from circadia.home import Home, State
from circadia.journal import Turn
from circadia.quarantine import QuarantinedTurn
from circadia.sleep.evaluate import EvalResult
from circadia.sleep.record import NightRecord, NightStatus

Log = Callable[[str], None]


def stderr_log(msg: str) -> None:
    """One timestamped line on stderr (a pipeline cell's log)."""
    print(f"[circadia {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def quiet(_msg: str) -> None:
    """A log that says nothing."""


@dataclass
class NightContext:
    """Inputs of a night and what its phases hand to each other; ``record`` is the typed result."""

    home: Home
    cfg: NightConfig
    state: State
    record: NightRecord
    night_dir: Path
    say: Log = quiet
    hooks: dict[str, Callable[..., Any]] = field(default_factory=dict)
    probes: list[dict] | None = None
    model_dir: Path | None = None
    backend: Backend | None = None
    store: Any = None
    # filled in by the phases, in order
    last_line: int = 0  # last memories.jsonl line this night consumed
    train_turns: list[Turn] = field(default_factory=list)  # redacted, not held out
    to_store: list[Turn] = field(default_factory=list)
    quarantined: list[QuarantinedTurn] = field(default_factory=list)  # poison turns left out tonight
    heldout: list[Example] = field(default_factory=list)
    base: Path | None = None
    key: str | None = None  # eval-cache key of the model before training
    pre: EvalResult | None = None
    dreams: DreamResult | None = None
    tcfg: TrainConfig | None = None
    report: TrainReport | None = None
    tmp: Path | None = None  # the adapter being written
    post: EvalResult | None = None

    @property
    def n(self) -> int:
        return self.record.night

    @property
    def seed(self) -> int:
        return self.record.seed

    def end(self, status: NightStatus, reason: str | None = None) -> None:
        """Stop after this phase with ``status``."""
        self.record.status = status
        self.record.reason = reason

    def hook(self, name: str, *args: Any) -> None:
        """Run test hook ``name`` if one is set (``after_train``, ``before_state``, ``after_state``)."""
        if name in self.hooks:
            self.hooks[name](*args)
