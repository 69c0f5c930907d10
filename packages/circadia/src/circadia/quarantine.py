"""Poison turns: what one bad turn leaves behind instead of stopping the night.

A turn that cannot be decoded, routed or tokenized is *quarantined*: it is left out of training,
the store and evaluation, and a :class:`QuarantinedTurn` (which turn, at which stage, why) is
reported so the night can log it. Later nights never see it again (its line is consumed), so one
bad turn stops nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class QuarantinedTurn:
    """One turn (or example) left out of the night, with the stage that rejected it and why."""

    turn: str | None  # the turn id (None for an example without one, e.g. a dream)
    stage: str  # "decode" | "route" | "tokenize"
    error: str  # what went wrong, one line
    source: str = "memory"  # memory | dream | replay | heldout

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def error_line(err: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line, cut to ``limit`` characters (never the turn's text)."""
    text = f"{type(err).__name__}: {err}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def write_quarantine(path: str | Path, entries: list[QuarantinedTurn]) -> Path | None:
    """Append ``entries`` to a private JSONL file (nothing written when empty)."""
    if not entries:
        return None
    from circadia.jsonl import append_jsonl

    append_jsonl(path, [e.to_json() for e in entries], private=True)
    return Path(path)
