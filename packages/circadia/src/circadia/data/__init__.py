"""Data shipped with circadia (written for this project).

- ``old_core.jsonl``: general instructions ("old core"); ``split: replay`` items are mixed into
  every night's training (~20%), ``split: eval`` items measure forgetting and are never trained on.
- ``harness.jsonl``: the capability harness (math, reasoning, factual, format, summarization,
  style, context) with deterministic scorers.
- ``days/dayNN.jsonl``: a simulated user's chat logs (facts, code, preferences, style, a few
  pasted secrets), ``days/probes.jsonl``: fact questions with the answer string retrieval must find,
  ``days/secrets.txt``: every secret planted in the logs (tests assert none reaches training data).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from circadia.backends.base import Example


def data_path(*parts: str) -> Path:
    return Path(str(resources.files("circadia.data").joinpath(*parts)))


def _jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def old_core(split: str) -> list[Example]:
    """The shipped general instruction set: ``split`` is ``replay`` or ``eval``."""
    if split not in ("replay", "eval"):
        raise ValueError("split must be 'replay' or 'eval'")
    return [Example(o["messages"], source="replay" if split == "replay" else "heldout", meta={"id": o["id"]})
            for o in _jsonl(data_path("old_core.jsonl")) if o["split"] == split]


def load_replay_set(spec: str = "builtin") -> list[Example]:
    """``builtin`` (old_core replay split) or a JSONL path of chats (``messages``)."""
    if spec == "builtin":
        return old_core("replay")
    return [Example(o["messages"], source="replay") for o in _jsonl(Path(spec))]


def harness_items() -> list[dict]:
    return _jsonl(data_path("harness.jsonl"))


def day_paths() -> list[Path]:
    return sorted(data_path("days").glob("day*.jsonl"))


def probes() -> list[dict]:
    return _jsonl(data_path("days", "probes.jsonl"))


def planted_secrets() -> list[str]:
    return [s for s in data_path("days", "secrets.txt").read_text().splitlines() if s.strip()]
