"""The second pass: Yelp's detect-secrets plugins for the long tail of credential formats.

detect-secrets is a maintained scanner for source files; its plugins yield secret *values* per
line. This module runs every plugin it ships (cloud providers' key formats, Basic auth, webhooks,
JWTs, ... - all but the public-IP detector: an IP address is not a credential) through its Python
API and turns each value back into spans of the line, so redaction stays span-based. Two
plugins are adapted to chat text:

- ``KeywordDetector``: its regex tables (``password = ...``, ``api_key: ...``) are matched with
  ``finditer`` for spans; an unquoted value stops at the first space (the plugin takes the rest
  of the line, which would redact the sentence after a password), and a placeholder or a code
  reference (``os.environ[...]``) is not a secret.
- ``Base64HighEntropyString``: its Shannon entropy is applied to quoted strings (as the plugin
  does) and, more strictly, to long unquoted tokens mixing upper case, lower case and digits.
  Hex strings are left to the keyword rules: commit hashes and checksums are not secrets.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from circadia.redaction.patterns import key_value, password_value

SKIPPED_PLUGINS = {"IPPublicDetector", "KeywordDetector", "Base64HighEntropyString", "HexHighEntropyString"}
MIN_VALUE = 6  # shorter values of a format plugin are too common to replace everywhere in a line
QUOTED = re.compile(r"([\"'])([A-Za-z0-9+/=_\-]{16,500})\1")
UNQUOTED = re.compile(r"(?<![A-Za-z0-9+/=_\-.])[A-Za-z0-9+/_\-]{32,500}={0,2}(?![A-Za-z0-9+/=_\-])")
HASH_PREFIX = re.compile(r"(?i)(?:sha(?:1|256|384|512)|md5):$")
QUOTED_ENTROPY = 3.5  # bits per character; the plugin's own limit (4.5) applies to unquoted tokens
TRAILING = ".,;:!?)]}>"


@lru_cache(maxsize=1)
def plugins() -> tuple[list[Any], Any, Any]:
    """(format plugins, the keyword plugin's regex tables, the base64 entropy plugin), built once."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins import keyword
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

    mapping = get_mapping_from_secret_type_to_class()
    formats = [cls() for cls in mapping.values() if cls.__name__ not in SKIPPED_PLUGINS]
    tables = (keyword.CONFIG_DENYLIST_REGEX_TO_GROUP, keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP)
    return formats, tables, Base64HighEntropyString()


def _kind(secret_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


def _occurrences(line: str, value: str) -> list[tuple[int, int]]:
    out, pos = [], line.find(value)
    while pos >= 0:
        out.append((pos, pos + len(value)))
        pos = line.find(value, pos + len(value))
    return out


def _format_spans(line: str, formats: list[Any]) -> list[tuple[str, int, int]]:
    out = []
    for plugin in formats:
        for value in set(plugin.analyze_string(line)):
            if isinstance(value, str) and len(value) >= MIN_VALUE:
                out += [(_kind(plugin.secret_type), s, e) for s, e in _occurrences(line, value)]
    return out


def _keyword_spans(line: str, tables) -> list[tuple[str, int, int]]:
    out = []
    for table in tables:
        for regex, group in table.items():
            for m in regex.finditer(line):
                start, end = m.span(group)
                quoted = start > 0 and line[start - 1] in "\"'`" and end < len(line) and line[end] == line[start - 1]
                if not quoted:  # the plugin's unquoted value runs to the end of the line: stop at a space
                    space = re.search(r"\s", line[start:end])
                    end = start + space.start() if space else end
                    while end > start and line[end - 1] in TRAILING:
                        end -= 1
                value = line[start:end]
                check = password_value if re.search(r"pass|pwd|contrase", m.group(0), re.I) else key_value
                if end > start and check(value):
                    out.append(("secret_keyword", start, end))
    return out


def _entropy_spans(line: str, b64) -> list[tuple[str, int, int]]:
    out = []

    def mixed(v: str) -> bool:
        return any(c.isupper() for c in v) and any(c.islower() for c in v) and any(c.isdigit() for c in v)

    for m in QUOTED.finditer(line):
        v = m.group(2)
        if mixed(v) and b64.calculate_shannon_entropy(v) > QUOTED_ENTROPY:
            out.append(("high_entropy_string", *m.span(2)))
    for m in UNQUOTED.finditer(line):
        v = m.group()
        if HASH_PREFIX.search(line, max(0, m.start() - 8), m.start()):  # SHA256:... is a public fingerprint
            continue
        if mixed(v) and b64.calculate_shannon_entropy(v) > b64.entropy_limit:
            out.append(("high_entropy_string", *m.span()))
    return out


def detect_secrets_spans(text: str) -> list[tuple[str, int, int]]:
    """``(kind, start, end)`` of every value detect-secrets' plugins find in ``text`` (line by line)."""
    formats, tables, b64 = plugins()
    out: list[tuple[str, int, int]] = []
    offset = 0
    for line in text.split("\n"):
        if line.strip():
            spans = _format_spans(line, formats) + _keyword_spans(line, tables) + _entropy_spans(line, b64)
            out += [(k, s + offset, e + offset) for k, s, e in spans]
        offset += len(line) + 1
    return out
