"""The day log's retention limit: turns older than N days are deleted once slept on.

``memories.jsonl`` is append-only and its line numbers are the night's bookmark
(``state.consumed_lines``), so a deleted turn becomes an empty line: the bookmark stays right,
the text is gone. The new file replaces the old one by an atomic rename while the journal's
append lock is held (a chat appending at the same time waits a moment), so a crash leaves the
old file or the new one. Turns not yet slept on, and turns without a readable timestamp, are kept.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

from circadia.home import Home
from circadia.journal import Journal
from circadia.jsonl import PRIVATE_MODE


def _age_days(line: bytes, now: _dt.datetime) -> float | None:
    try:
        ts = json.loads(line).get("ts")
        when = _dt.datetime.fromisoformat(str(ts))
    except (ValueError, AttributeError, TypeError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return (now - when).total_seconds() / 86400.0


def apply_retention(home: Home, days: float, *, now: _dt.datetime | None = None) -> int:
    """Blank every slept-on turn of the home's day log older than ``days``; returns how many."""
    journal = Journal(home.memories)
    if not journal.path.exists():
        return 0
    now = now or _dt.datetime.now(_dt.timezone.utc)
    consumed = home.load_state().consumed_lines
    with journal.lock():
        lines = journal.path.read_bytes().split(b"\n")
        dropped = 0
        for i in range(min(consumed, len(lines))):
            if lines[i].strip():
                age = _age_days(lines[i], now)
                if age is not None and age > days:
                    lines[i] = b""
                    dropped += 1
        if dropped:
            _replace(journal.path, b"\n".join(lines))
    return dropped


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.retention.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
