"""Find and redact secrets (API keys, tokens, passwords, private keys) before anything is trained
on or stored. Patterns are deliberately greedy: a false positive costs a redacted word, a false
negative leaks a credential into the weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REDACTED = "[REDACTED:{kind}]"

# (kind, pattern, group to redact: 0 = whole match)
_PATTERNS: list[tuple[str, re.Pattern[str], int]] = [
    ("private_key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)", re.S), 0),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"), 0),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b"), 0),
    ("gitlab_token", re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b"), 0),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), 0),
    ("stripe_key", re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b"), 0),
    ("openai_key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}\b"), 0),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), 0),
    ("huggingface_token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"), 0),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\b"), 0),
    ("bearer_token", re.compile(r"(?i)\b(?:authorization\s*:\s*)?bearer\s+([A-Za-z0-9_\-\.=+/]{16,})"), 1),
    ("url_credentials", re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:([^\s@/]+)@"), 1),
    (
        "assigned_secret",
        re.compile(
            r"(?i)\b(?:api[_\-]?key|apikey|secret(?:[_\-]?key)?|access[_\-]?token|auth[_\-]?token|token|"
            r"client[_\-]?secret|passw(?:or)?d|passwd|pwd)\b[\"']?\s*[:=]\s*[\"']?([^\s\"',;]{4,})"
        ),
        1,
    ),
    (
        "password_phrase",
        re.compile(r"(?i)\b(?:password|passcode|passphrase|passwort|pin code|pin)\b[^.\n]{0,40}?\b(?:is|was|are|=|:)\s*[\"']?([^\s\"',;]{3,})"),
        1,
    ),
    ("generic_secret", re.compile(r"(?i)\b(?:key|token|secret)\s+(?:is\s+)?[\"']?([A-Za-z0-9_\-]{32,})\b"), 1),
]


@dataclass(frozen=True)
class SecretHit:
    kind: str
    start: int
    end: int


def find_secrets(text: str) -> list[SecretHit]:
    """Non-overlapping secret spans in ``text`` (earliest, then longest, first)."""
    hits: list[SecretHit] = []
    for kind, pattern, group in _PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span(group)
            if end > start:
                hits.append(SecretHit(kind, start, end))
    hits.sort(key=lambda h: (h.start, -(h.end - h.start)))
    out: list[SecretHit] = []
    for h in hits:
        if out and h.start < out[-1].end:
            if h.end > out[-1].end:  # extend an overlapping hit rather than leak its tail
                out[-1] = SecretHit(out[-1].kind, out[-1].start, h.end)
            continue
        out.append(h)
    return out


def redact(text: str) -> tuple[str, list[str]]:
    """``text`` with every secret replaced by ``[REDACTED:<kind>]``, and the kinds found."""
    hits = find_secrets(text)
    if not hits:
        return text, []
    parts, pos = [], 0
    for h in hits:
        parts.append(text[pos : h.start])
        parts.append(REDACTED.format(kind=h.kind))
        pos = h.end
    parts.append(text[pos:])
    return "".join(parts), [h.kind for h in hits]


def redact_messages(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[str]]:
    out, kinds = [], []
    for m in messages:
        clean, found = redact(m["content"])
        out.append({"role": m["role"], "content": clean})
        kinds += found
    return out, kinds


def has_secret(text: str) -> bool:
    return bool(find_secrets(text))
