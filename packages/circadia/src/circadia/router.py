"""The router: which turns ALSO go verbatim to the retrieval store (episodic memory).

Every turn trains LoRA (procedural memory: style, preferences) - the prototype's README promised
this and its code did not. Turns that carry code, URLs, JSON, long pastes or many numbers are, in
addition, stored verbatim for retrieval, because LoRA compresses them lossily. Secrets are
redacted first, so neither path ever sees them. Every decision is logged with its reasons.

Robustness: a message longer than ``max_message_chars`` is cut with a note saying so; every
pattern is linear in the text (bounded repetitions, no nested quantifiers, no recursion: a
megabyte of minified code or 2 KB of ``[`` route in milliseconds); and any error while routing one
turn quarantines that turn (``Decision.quarantine``, ``to_lora`` and ``to_store`` False) instead
of stopping the night.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from circadia.journal import Turn
from circadia.quarantine import error_line
from circadia.secrets_filter import redact_capped
from circadian_core.config import bounded

URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"']+|\bwww\.[a-z0-9\-]{1,63}\.[a-z]{2,}\S*", re.I)
FENCE = re.compile(r"```")
# a line that starts like code ([ \t]* rather than \s*, so blank lines are never rescanned)
CODE_LINE = re.compile(
    r"^[ \t]*(?:def |class |import |from \S+ import |function\s*\w*\s*\(|const |let |var |public |private |"
    r"#include|package |fn |SELECT\s[^\n]{0,400}?\sFROM\b|INSERT INTO|CREATE TABLE|for\s*\(|while\s*\(|"
    r"if\s*\([^\n]{0,400}?\)\s*\{|return\b|\$ |>>> |sudo |pip install|npm |git )",
    re.M | re.I,
)
# code in the middle of a sentence ("why does def add(a, b): return a + b fail?"): one is enough
CODE_INLINE = re.compile(
    r"\b(?:def|async def)\s+\w{1,80}\s*\([^()\n]{0,200}\)\s*(?:->\s*[\w\[\], .]{1,80})?:"
    r"|\bfunction\s+\w{1,80}\s*\([^()\n]{0,200}\)\s*\{"
    r"|\bclass\s+[A-Z]\w{0,79}\s*(?:\([^()\n]{0,200}\))?\s*[:{]"
    r"|\bfrom\s+[\w.]{1,100}\s+import\s+\w"
    r"|\b(?:const|let|var)\s+\w{1,80}\s*=\s*(?:\([^()\n]{0,200}\)\s*=>|function\b|require\()"
    r"|\bfn\s+\w{1,80}\s*\([^()\n]{0,200}\)\s*(?:->|\{)",
)
CODE_TOKENS = re.compile(
    r"(?:=>|->|::|;[ \t]*$|\{[ \t]*$|^[ \t]*\}|\(\)\s*[:{]|\b\w{1,80}\([^()\n]{0,200}\)[ \t]*;|==|!=|&&|\|\|)", re.M
)
# an object key ({"id": 1 / , "name": ...): the start of JSON without parsing it
JSON_KEY = re.compile(r"[{,\[]\s{0,20}\"[^\"\\\n]{1,64}\"\s{0,20}:\s{0,20}(?:[\"{\[\d\-]|true\b|false\b|null\b)")
NUMBER = re.compile(r"(?<![A-Za-z])[-+]?\d[\d,]*(?:\.\d+)?%?")
MAX_JSON_DEPTH = 64


@dataclass
class RouterConfig:
    enabled: bool = True  # False: the "no routing" ablation - nothing goes to the store
    long_chars: int = bounded(600, low=1)
    numeric_ratio: float = bounded(0.12, low=0.0, high=1.0)  # digits / non-space characters
    min_numbers: int = bounded(4, low=1)  # ... with at least this many separate numbers
    code_lines: int = bounded(2, low=1)  # lines that look like code (outside fences)
    max_message_chars: int = bounded(20_000, low=200)  # longer messages are cut, with a note


@dataclass
class Decision:
    """Where one turn goes. ``to_lora``: it trains LoRA (every routed turn does; False only for a
    quarantined turn - the night also leaves held-out turns out of training). ``to_store``: it is
    also stored verbatim. ``quarantine``: why routing failed (None when it did not)."""

    turn_id: str
    to_lora: bool
    to_store: bool
    reasons: list[str]
    secrets: list[str] = field(default_factory=list)
    quarantine: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _json_depth_ok(text: str) -> bool:
    """Nesting depth of brackets stays <= MAX_JSON_DEPTH (a linear scan; json.loads recurses)."""
    depth = 0
    for ch in text:
        if ch in "{[":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return False
        elif ch in "}]":
            depth = max(0, depth - 1)
    return True


def _json_like(text: str) -> bool:
    """An object key anywhere, or the whole text a JSON array/object (parsed only when shallow)."""
    if JSON_KEY.search(text):
        return True
    stripped = text.strip()
    if stripped[:1] not in ("{", "[") or len(stripped) < 12 or not _json_depth_ok(stripped):
        return False
    try:
        obj = json.loads(stripped)
    except ValueError:
        return False
    return isinstance(obj, dict) or (isinstance(obj, list) and any(isinstance(x, (dict, list, str)) for x in obj))


def _numbers(text: str, ratio: float) -> tuple[int, int, int]:
    """(ASCII digits, non-space characters, separate numbers) of ``text``; the numbers are only
    counted when the digit ratio reaches ``ratio`` (counting is the slow part)."""
    digits = sum(map(text.count, "0123456789"))
    chars = len(text) - sum(map(text.count, " \t\n\r\f\v"))
    if not chars or digits / chars < ratio:
        return digits, chars, 0
    return digits, chars, len(NUMBER.findall(text))


def classify_text(text: str, cfg: RouterConfig) -> list[str]:
    """Why ``text`` should be stored verbatim (empty list: it should not)."""
    reasons = []
    code = len(CODE_LINE.findall(text)) + len(CODE_TOKENS.findall(text))
    if FENCE.search(text) or CODE_INLINE.search(text) or code >= cfg.code_lines:
        reasons.append("code")
    if URL.search(text):
        reasons.append("url")
    if _json_like(text):
        reasons.append("json")
    if len(text) >= cfg.long_chars:
        reasons.append(f"long({len(text)}>={cfg.long_chars})")
    digits, chars, numbers = _numbers(text, cfg.numeric_ratio)
    if chars and numbers >= cfg.min_numbers and digits / chars >= cfg.numeric_ratio:
        reasons.append(f"numeric({digits}/{chars} digits, {numbers} numbers)")
    return reasons


def _route(turn: Turn, cfg: RouterConfig) -> tuple[Turn, Decision]:
    msgs, capped = [], []
    secrets = [str(k) for k in turn.extra.get("redacted") or []]  # redacted when the turn was written
    for m in turn.messages:
        # redacted before the cut (a secret straddling it is seen whole), then cut with a note
        content, found, cut = redact_capped(m["content"], cfg.max_message_chars)
        msgs.append({"role": m["role"], "content": content})
        secrets += found
        if cut:
            capped.append(f"capped({m['role']} {len(m['content'])}>{cfg.max_message_chars} chars)")
    clean = Turn(id=turn.id, messages=msgs, ts=turn.ts, session=turn.session, source=turn.source, extra=dict(turn.extra))
    if not cfg.enabled:
        return clean, Decision(turn.id, True, False, ["routing disabled: all to LoRA", *capped], secrets)
    text = "\n".join(m["content"] for m in msgs if m["role"] in ("user", "assistant"))
    reasons = classify_text(text, cfg)
    if reasons:
        return clean, Decision(turn.id, True, True, reasons + capped + ["lora(every turn trains LoRA)"], secrets)
    return clean, Decision(turn.id, True, False, ["conversational: LoRA only", *capped], secrets)


def route(turn: Turn, cfg: RouterConfig) -> tuple[Turn, Decision]:
    """The redacted (and size-capped) turn and the routing decision for it.

    Never raises for a bad turn: the error quarantines it (``Decision.quarantine`` names it; the
    returned turn then carries no text, so nothing of it can reach training or the store).
    """
    try:
        return _route(turn, cfg)
    except Exception as err:
        empty = Turn(id=turn.id, messages=[], ts=turn.ts, session=turn.session, source=turn.source, extra=dict(turn.extra))
        why = error_line(err)
        return empty, Decision(turn.id, False, False, [f"quarantined: {why}"], [], quarantine=why)
