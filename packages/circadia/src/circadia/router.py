"""The router: which turns ALSO go verbatim to the retrieval store (episodic memory).

Every turn trains LoRA (procedural memory: style, preferences) - the prototype's README promised
this and its code did not. Turns that carry code, URLs, JSON, long pastes or many numbers are, in
addition, stored verbatim for retrieval, because LoRA compresses them lossily. Secrets are
redacted first, so neither path ever sees them. Every decision is logged with its reasons.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from circadia.journal import Turn
from circadia.secrets_filter import redact_messages

URL = re.compile(r"\b(?:https?|ftp)://[^\s<>\"']+|\bwww\.[a-z0-9\-]+\.[a-z]{2,}\S*", re.I)
FENCE = re.compile(r"```")
CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import |function\s*\w*\s*\(|const |let |var |public |private |"
    r"#include|package |fn |SELECT .* FROM|INSERT INTO|CREATE TABLE|for\s*\(|while\s*\(|if\s*\(.*\)\s*\{|"
    r"return\b|\$ |>>> |sudo |pip install|npm |git )",
    re.M | re.I,
)
CODE_TOKENS = re.compile(r"(?:=>|->|::|;\s*$|\{\s*$|^\s*\}|\(\)\s*[:{]|\w+\([^)]*\)\s*;|==|!=|&&|\|\|)", re.M)
JSON_START = re.compile(r"[\{\[]\s*\"[^\"]+\"\s*:|^\s*[\{\[]", re.M)
NUMBER = re.compile(r"(?<![A-Za-z])[-+]?\d[\d,]*(?:\.\d+)?%?")


@dataclass
class RouterConfig:
    enabled: bool = True  # False: the "no routing" ablation - nothing goes to the store
    long_chars: int = 600
    numeric_ratio: float = 0.12  # digits / non-space characters
    min_numbers: int = 4  # ... with at least this many separate numbers
    code_lines: int = 2  # lines that look like code (outside fences)


@dataclass
class Decision:
    turn_id: str
    to_lora: bool
    to_store: bool
    reasons: list[str]
    secrets: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _json_like(text: str) -> bool:
    stripped = text.strip()
    if stripped[:1] in "{[":
        try:
            json.loads(stripped)
            return True
        except json.JSONDecodeError:
            pass
    for m in re.finditer(r"[\{\[]", text):
        chunk = text[m.start():]
        try:
            obj, _ = json.JSONDecoder().raw_decode(chunk)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, (dict, list)) and len(json.dumps(obj)) >= 12 and (isinstance(obj, dict) or any(isinstance(x, (dict, list, str)) for x in obj)):
            return True
    return False


def classify_text(text: str, cfg: RouterConfig) -> list[str]:
    """Why ``text`` should be stored verbatim (empty list: it should not)."""
    reasons = []
    if FENCE.search(text) or len(CODE_LINE.findall(text)) + len(CODE_TOKENS.findall(text)) >= cfg.code_lines:
        reasons.append("code")
    if URL.search(text):
        reasons.append("url")
    if _json_like(text):
        reasons.append("json")
    if len(text) >= cfg.long_chars:
        reasons.append(f"long({len(text)}>={cfg.long_chars})")
    chars = [c for c in text if not c.isspace()]
    digits = sum(c.isdigit() for c in chars)
    numbers = NUMBER.findall(text)
    if chars and len(numbers) >= cfg.min_numbers and digits / len(chars) >= cfg.numeric_ratio:
        reasons.append(f"numeric({digits}/{len(chars)} digits, {len(numbers)} numbers)")
    return reasons


def route(turn: Turn, cfg: RouterConfig) -> tuple[Turn, Decision]:
    """The redacted turn and the routing decision for it."""
    clean_msgs, secrets = redact_messages(turn.messages)
    clean = Turn(id=turn.id, messages=clean_msgs, ts=turn.ts, session=turn.session, source=turn.source, extra=dict(turn.extra))
    text = "\n".join(m["content"] for m in clean_msgs if m["role"] in ("user", "assistant"))
    reasons = classify_text(text, cfg)
    if not cfg.enabled:
        return clean, Decision(turn.id, True, False, ["routing disabled: all to LoRA"], secrets)
    if reasons:
        return clean, Decision(turn.id, True, True, reasons + ["lora(every turn trains LoRA)"], secrets)
    return clean, Decision(turn.id, True, False, ["conversational: LoRA only"], secrets)
