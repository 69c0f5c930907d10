"""The dreamer: synthetic user/assistant pairs generated from the day's memories.

Several REM bursts per night; each burst samples memories (seeded) and asks the model, at a
temperature above 1 (exploration), for ONE new question on the memory's topic and its answer in
the same style. Output is parsed strictly (``Q: ...`` then ``A: ...``); anything else is dropped
and counted by reason - a small model at high temperature produces plenty of invalid dreams, and
those must never reach training. All bursts are sampled in one batch (each row at its burst's
temperature) when the backend can, which costs about one burst's time on a CPU.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from circadia.backends.base import Example
from circadia.evaluation import generate_all
from circadia.journal import Turn
from circadia.secrets_filter import has_secret, redact

PROMPT = (
    "Here is a conversation:\nUser: {user}\nAssistant: {assistant}\n\n"
    "Write ONE new question the same user might ask next about this topic, and a short answer in the "
    "same style as the assistant. Use exactly this format and nothing else:\nQ: <question>\nA: <answer>"
)
_FORMAT = re.compile(r"\AQ:[ \t]*(?P<q>[^\n]+?)[ \t]*\n+A:[ \t]*(?P<a>.+?)\s*\Z", re.S)


@dataclass
class DreamConfig:
    enabled: bool = True
    bursts: int = 3  # REM cycles per night
    per_burst: int = 4  # memories dreamt about per burst
    temperature: float = 1.2  # of the first burst; must be > 1
    temperature_step: float = 0.1  # each later burst dreams a little wilder
    max_tokens: int = 80
    max_question_chars: int = 300
    max_answer_chars: int = 600
    source_chars: int = 600  # memory text shown to the dreamer is cut to this


@dataclass
class DreamResult:
    dreams: list[Example]
    attempts: int
    invalid: Counter = field(default_factory=Counter)
    raw: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "valid": len(self.dreams), "invalid": sum(self.invalid.values()),
                "invalid_by_reason": dict(sorted(self.invalid.items()))}


def parse_dream(text: str, source: Turn | None, cfg: DreamConfig) -> tuple[tuple[str, str] | None, str | None]:
    """``((question, answer), None)`` for a valid dream, else ``(None, reason)``."""
    text = text.strip()
    if not text:
        return None, "empty"
    if "<|" in text or "|>" in text:
        return None, "special_tokens"
    m = _FORMAT.match(text)
    if m is None:
        return None, "bad_format"
    q, a = m.group("q").strip(), m.group("a").strip()
    if re.search(r"(?m)^\s*(?:Q|A|User|Assistant)\s*:", a):
        return None, "extra_turns"
    if len(q) < 5 or len(a) < 1 or not re.search(r"[A-Za-z]", q + a):
        return None, "too_short"
    if len(q) > cfg.max_question_chars or len(a) > cfg.max_answer_chars:
        return None, "too_long"
    if "<question>" in q or "<answer>" in a:
        return None, "template_echo"
    if source is not None and _norm(q) == _norm(source.user):
        return None, "copy_of_memory"
    if has_secret(q) or has_secret(a):
        return None, "secret"
    return (q, a), None


def _norm(s: str) -> str:
    return re.sub(r"\W+", " ", s.lower()).strip()


def dream(backend, memories: list[Turn], cfg: DreamConfig, *, seed: int) -> DreamResult:
    """Run ``cfg.bursts`` REM bursts over ``memories`` (already redacted); strict parsing."""
    result = DreamResult(dreams=[], attempts=0)
    if not cfg.enabled or not memories or cfg.bursts <= 0 or cfg.per_burst <= 0:
        return result
    if cfg.temperature <= 1.0:
        raise ValueError(f"dream temperature must be > 1 (exploration), got {cfg.temperature}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xD12EA4]))
    jobs: list[tuple[int, float, Turn]] = []
    for burst in range(cfg.bursts):
        k = min(cfg.per_burst, len(memories))
        temp = cfg.temperature + burst * cfg.temperature_step
        jobs += [(burst, temp, memories[i]) for i in rng.choice(len(memories), size=k, replace=False)]
    chats = [[{"role": "user", "content": PROMPT.format(user=t.user[: cfg.source_chars], assistant=t.assistant[: cfg.source_chars])}]
             for _, _, t in jobs]
    replies = generate_all(backend, chats, max_tokens=cfg.max_tokens, temperature=[t for _, t, _ in jobs], seed=int(seed) * 1000)
    seen: set[str] = set()
    for (burst, temp, src), reply in zip(jobs, replies):
        result.attempts += 1
        parsed, reason = parse_dream(reply, src, cfg)
        if parsed is not None and _norm(parsed[0]) in seen:
            parsed, reason = None, "duplicate"
        result.raw.append({"burst": burst, "temperature": temp, "memory": src.id, "reply": redact(reply)[0],
                           "valid": parsed is not None, "reason": reason})
        if parsed is None:
            result.invalid[reason] += 1
            continue
        seen.add(_norm(parsed[0]))
        q, a = parsed
        result.dreams.append(Example([{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                                     source="dream", meta={"memory": src.id, "burst": burst, "temperature": temp}))
    return result
