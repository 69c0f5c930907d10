"""The day's memories: every chat turn appended to ``memories.jsonl`` (append-only, fsync, 0600).

A turn record::

    {"id": "t-...", "ts": "2026-01-01T12:00:00+00:00", "session": "...", "source": "chat",
     "messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}

``messages`` may carry a leading system message and earlier turns as context; the last message is
the assistant reply. Extra keys (``day``, ``tags``) are kept.

Nothing raw is kept: every message is redacted (:mod:`circadia.redaction`) and cut to
``max_message_chars`` (with a note) *before* the turn is written, and a bad line of an imported
log is redacted before it is quarantined. Appends hold a short lock (``.memories.jsonl.lock``)
so the retention limit (:mod:`circadia.retention`) can blank old turns while a chat is open.
Nothing else ever rewrites the file."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circadia.backends.base import ROLES, Example
from circadia.jsonl import ReadResult, append_jsonl, read_jsonl
from circadia.redaction import redact, redact_messages

MAX_MESSAGE_CHARS = 20_000  # a longer message is cut, with a note, before it is written


@dataclass
class Turn:
    id: str
    messages: list[dict[str, str]]
    ts: str = ""
    session: str = ""
    source: str = "chat"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def user(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")

    @property
    def assistant(self) -> str:
        return self.messages[-1]["content"] if self.messages and self.messages[-1]["role"] == "assistant" else ""

    def text(self) -> str:
        """The turn as one verbatim document (what the retrieval store holds)."""
        return f"User: {self.user}\nAssistant: {self.assistant}"

    def example(self, source: str = "memory") -> Example:
        return Example(messages=[dict(m) for m in self.messages], source=source, meta={"turn": self.id})

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "ts": self.ts, "session": self.session, "source": self.source,
                "messages": self.messages, **self.extra}


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def turn_id(messages: list[dict[str, str]], ts: str, salt: str = "") -> str:
    h = hashlib.sha256(json.dumps([messages, ts, salt], sort_keys=True).encode()).hexdigest()
    return "t-" + h[:16]


def check_turn(obj: Any) -> str | None:
    """Why ``obj`` is not a usable turn record (None when it is)."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    msgs = obj.get("messages")
    if msgs is None and "user" in obj and "assistant" in obj:
        return None if isinstance(obj["user"], str) and isinstance(obj["assistant"], str) else "user/assistant must be strings"
    if not isinstance(msgs, list) or len(msgs) < 2:
        return "needs 'messages' (a list of at least a user and an assistant message) or 'user' + 'assistant'"
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            return f"message {i} must be {{'role': one of {list(ROLES)}, 'content': str}}"
    if msgs[-1]["role"] != "assistant":
        return "the last message must be the assistant's reply"
    if not any(m["role"] == "user" for m in msgs):
        return "no user message"
    return None


def turn_from_json(obj: dict[str, Any], *, source: str | None = None) -> Turn:
    if "messages" in obj:
        messages = [{"role": m["role"], "content": m["content"]} for m in obj["messages"]]
    else:
        messages = [{"role": "user", "content": obj["user"]}, {"role": "assistant", "content": obj["assistant"]}]
        if isinstance(obj.get("system"), str):
            messages.insert(0, {"role": "system", "content": obj["system"]})
    ts = str(obj.get("ts") or "")
    known = {"id", "ts", "session", "source", "messages", "user", "assistant", "system"}
    return Turn(
        id=str(obj.get("id") or turn_id(messages, ts)),
        messages=messages,
        ts=ts,
        session=str(obj.get("session") or ""),
        source=source or str(obj.get("source") or "chat"),
        extra={k: v for k, v in obj.items() if k not in known},
    )


class Journal:
    """``memories.jsonl`` of one circadia home (turns are redacted and size-capped on the way in)."""

    def __init__(self, path: str | Path, *, max_message_chars: int | None = MAX_MESSAGE_CHARS):
        self.path = Path(path)
        self.max_message_chars = max_message_chars

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.lock")

    def lock(self, timeout: float = 60.0):
        """The file lock every writer of the journal holds (appends for milliseconds)."""
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.lock_path), timeout=timeout)

    def clean(self, turn: Turn) -> Turn:
        """``turn`` with every message redacted and capped (a new Turn; the argument is untouched)."""
        msgs, found = redact_messages(turn.messages, cap=self.max_message_chars)
        extra = dict(turn.extra)
        if found:  # the kinds redacted on the way in (the night counts them)
            extra["redacted"] = list(extra.get("redacted") or []) + found
        return Turn(id=turn.id, messages=msgs, ts=turn.ts, session=turn.session, source=turn.source, extra=extra)

    def append(self, turn: Turn) -> Turn:
        """Write one turn (redacted); returns what was written."""
        return self.append_many([turn])[0]

    def append_many(self, turns: Iterable[Turn]) -> list[Turn]:
        """Write turns (redacted) in one durable append; returns what was written."""
        clean = [self.clean(t) for t in turns]
        with self.lock():
            append_jsonl(self.path, [t.to_json() for t in clean], private=True)
        return clean

    def record(self, messages: list[dict[str, str]], *, session: str = "", source: str = "chat", **extra: Any) -> Turn:
        """Append a new turn of ``messages`` (id from the redacted text); returns the written turn."""
        ts = now_iso()
        clean = self.clean(Turn(id="", messages=messages, ts=ts, session=session, source=source, extra=extra))
        clean.id = turn_id(clean.messages, ts, salt=session + str(self.count()))
        return self.append(clean)

    def read(self, *, start_line: int = 1) -> tuple[list[Turn], list[int], ReadResult]:
        """Turns from ``start_line`` on, their line numbers, and the read result (bad lines quarantined, redacted)."""
        res = read_jsonl(self.path, check=check_turn, start_line=start_line, scrub=lambda text: redact(text)[0])
        return [turn_from_json(o) for o in res.records], res.line_numbers, res

    def count(self) -> int:
        """Lines in the file (blanked old turns included: line numbers never change)."""
        if not self.path.exists():
            return 0
        with open(self.path, "rb") as fh:
            return sum(1 for _ in fh)


def import_log(src: str | Path, journal: Journal, *, source: str = "import", id_prefix: str = "",
               quarantine: str | Path | None = None, **extra: Any) -> tuple[int, ReadResult]:
    """``circadia remember``: append every valid turn of ``src`` to the journal; bad lines are
    reported with their line numbers and quarantined (default: ``quarantine.jsonl`` beside the
    journal, so the user's folder is left alone). Returns (count, read result)."""
    res = read_jsonl(src, check=check_turn, quarantine=quarantine or journal.path.with_name("quarantine.jsonl"),
                     scrub=lambda text: redact(text)[0])
    turns = []
    for obj in res.records:
        t = turn_from_json(obj, source=source)
        t.extra.update(extra)
        t.id = id_prefix + t.id
        if not t.ts:
            t.ts = now_iso()
        turns.append(t)
    journal.append_many(turns)
    return len(turns), res
