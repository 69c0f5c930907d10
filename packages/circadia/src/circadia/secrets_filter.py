"""Secret redaction (the public entry points; the implementation is :mod:`circadia.redaction`)."""

from circadia.redaction import (
    CAP_NOTE,
    REDACTED,
    SecretHit,
    find_secrets,
    has_secret,
    redact,
    redact_capped,
    redact_messages,
)

__all__ = ["CAP_NOTE", "REDACTED", "SecretHit", "find_secrets", "has_secret", "redact", "redact_capped", "redact_messages"]
