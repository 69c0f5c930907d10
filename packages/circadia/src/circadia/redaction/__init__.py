"""Find and redact secrets before anything is trained on, stored or logged.

Two passes, both span-based (only the secret is replaced by ``[REDACTED:<kind>]``; the sentence
around it stays):

1. circadia's own patterns (:mod:`circadia.redaction.patterns`): the formats people paste into a
   chat, ``NAME=value`` assignments with any prefix (``DB_PASSWORD=``), "my password is ...",
   quoted passphrases, URL credentials (also ``redis://:pw@host``), plus checksum-validated
   numbers (:mod:`circadia.redaction.checksums`: Luhn card numbers, IBANs);
2. detect-secrets' plugins (:mod:`circadia.redaction.second_pass`) for the long tail.

A false positive costs a redacted word; a false negative leaks a credential into the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from circadia.redaction.checksums import find_cards, find_ibans
from circadia.redaction.patterns import pattern_spans
from circadia.redaction.second_pass import detect_secrets_spans

REDACTED = "[REDACTED:{kind}]"


@dataclass(frozen=True)
class SecretHit:
    kind: str
    start: int
    end: int


def _spans(text: str) -> list[tuple[str, int, int]]:
    spans = pattern_spans(text)
    spans += [("card_number", s, e) for s, e in find_cards(text)]
    spans += [("iban", s, e) for s, e in find_ibans(text)]
    return spans + detect_secrets_spans(text)


def find_secrets(text: str) -> list[SecretHit]:
    """Non-overlapping secret spans in ``text``, in order; overlapping hits are merged into one
    (named by the earliest, longest hit) so that no tail of a secret is left behind."""
    hits = sorted(_spans(text), key=lambda h: (h[1], -(h[2] - h[1])))
    out: list[SecretHit] = []
    for kind, start, end in hits:
        if out and start < out[-1].end:
            if end > out[-1].end:
                out[-1] = SecretHit(out[-1].kind, out[-1].start, end)
            continue
        out.append(SecretHit(kind, start, end))
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


def redact_messages(messages: list[dict[str, str]], *, cap: int | None = None) -> tuple[list[dict[str, str]], list[str]]:
    """Every message's content redacted (roles kept; cut to ``cap`` characters with a note when
    longer, see :func:`redact_capped`), and the kinds found over all of them."""
    out, kinds = [], []
    for m in messages:
        clean, found, _ = redact_capped(m["content"], cap)
        out.append({"role": m["role"], "content": clean})
        kinds += found
    return out, kinds


CAP_NOTE = "\n[circadia: this message was {n} characters long; only its first {cap} are kept]"
CAP_MARGIN = 4096  # a secret this long that straddles the cut is still seen whole


def redact_capped(text: str, cap: int | None) -> tuple[str, list[str], bool]:
    """``(redacted text, kinds, cut)``: ``text`` redacted and, when longer than ``cap``
    characters, cut to them with a note saying so. Only the first ``cap + CAP_MARGIN``
    characters are scanned (so a megabyte paste costs what ``cap`` does), a secret straddling the
    cut is redacted whole, and the cut backs up to a space so no half token is kept."""
    if cap is None or len(text) <= cap:
        clean, kinds = redact(text)
        return clean, kinds, False
    head, kinds = redact(text[: cap + CAP_MARGIN])
    head = head[:cap]
    space = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    if space > cap // 2:
        head = head[:space]
    return head + CAP_NOTE.format(n=len(text), cap=cap), kinds, True


def has_secret(text: str) -> bool:
    """Whether ``text`` holds anything :func:`redact` would replace."""
    return bool(find_secrets(text))


__all__ = ["CAP_NOTE", "REDACTED", "SecretHit", "find_secrets", "has_secret", "redact", "redact_capped", "redact_messages"]
