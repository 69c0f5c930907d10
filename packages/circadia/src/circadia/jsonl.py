"""JSONL that never loses a line: durable appends, and reads that quarantine what they cannot parse.

- :func:`append_jsonl` appends records with ``O_APPEND`` + ``fsync`` and keeps the file at mode
  0600 (chat logs are private). It writes every byte or none: ``os.write`` may write less than
  asked (a full disk); the rest is retried, and on an error the file is cut back to its old
  length before the error is raised, so no torn line is ever left behind.
- :func:`read_jsonl` returns the valid records and, for every line that is not strict UTF-8, not
  valid JSON, holds an unpaired surrogate escape (``"\\ud800"``: it would crash a tokenizer on
  every later night) or fails the caller's check, reports the file and line number (stderr, and in
  the result) and copies the line into a quarantine file next to it (once per line: rereading does
  not duplicate entries; ``scrub`` may redact it first). The source file is never modified."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circadian_core.record import write_json_atomic  # the one implementation (re-exported for old imports)

PRIVATE_MODE = 0o600
__all__ = ["BadLine", "ReadResult", "append_jsonl", "quarantine_path", "read_jsonl", "write_all", "write_json_atomic"]


@dataclass
class BadLine:
    path: str
    line: int
    error: str
    raw: str

    def message(self) -> str:
        return f"{self.path}:{self.line}: {self.error}"


@dataclass
class ReadResult:
    records: list[dict[str, Any]]
    line_numbers: list[int]
    bad: list[BadLine] = field(default_factory=list)
    quarantine: Path | None = None


def append_jsonl(path: str | Path, record: dict[str, Any] | Iterable[dict[str, Any]], *, private: bool = True) -> None:
    """Append one record (or several) durably and whole; the file is kept at mode 0600 when ``private``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [record] if isinstance(record, dict) else list(record)
    if not records:
        return
    data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in records).encode("utf-8")
    mode = PRIVATE_MODE if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        if private:
            os.fchmod(fd, PRIVATE_MODE)
        # a previous crash may have left a torn line without its newline: start on a fresh line
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    data = b"\n" + data
        write_all(fd, data, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes, size: int) -> None:
    """Write all of ``data`` to ``fd`` (opened ``O_APPEND``, ``size`` bytes long before), looping
    over short writes; on any error cut the file back to ``size`` and raise."""
    view = memoryview(data)
    try:
        while view:
            n = os.write(fd, view)
            if n <= 0:
                raise OSError(errno.EIO, f"os.write wrote {n} bytes")
            view = view[n:]
    except BaseException:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


def quarantine_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".quarantine.jsonl")


def _line_key(path: Path, line: int, raw: str) -> str:
    return hashlib.sha256(f"{path.resolve()}:{line}:{raw}".encode()).hexdigest()[:24]


def read_jsonl(
    path: str | Path,
    *,
    check: Callable[[Any], str | None] | None = None,
    quarantine: str | Path | None = None,
    start_line: int = 1,
    warn: bool = True,
    scrub: Callable[[str], str] | None = None,
) -> ReadResult:
    """Valid records of ``path`` from line ``start_line`` (1-based) on; bad lines quarantined.

    ``check(obj)`` returns an error string for a parsed object that is not usable (or None).
    ``quarantine`` defaults to ``<stem>.quarantine.jsonl`` beside ``path``; each entry records the
    source file, line number, error and the raw line (passed through ``scrub`` when given, e.g. a
    secret redactor). Blank lines are ignored.
    """
    path = Path(path)
    qpath = Path(quarantine) if quarantine is not None else quarantine_path(path)
    result = ReadResult(records=[], line_numbers=[], quarantine=qpath)
    if not path.exists():
        return result
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno < start_line:
                continue
            obj, error, text = _parse_line(raw.rstrip(b"\r\n"), check)
            if error is None and obj is _BLANK:
                continue
            if error is None:
                result.records.append(obj)
                result.line_numbers.append(lineno)
            else:
                result.bad.append(BadLine(str(path), lineno, error, scrub(text) if scrub else text))
    if result.bad:
        _quarantine(qpath, path, result.bad)
        if warn:
            for bad in result.bad:
                print(f"warning: corrupt line skipped: {bad.message()} -> quarantined in {qpath}", file=sys.stderr)
    return result


_BLANK = object()


def _parse_line(raw: bytes, check: Callable[[Any], str | None] | None) -> tuple[Any, str | None, str]:
    """(object, error, text) of one line: strict UTF-8, JSON, no unpaired surrogates, ``check``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, f"invalid UTF-8 (byte {err.start + 1} of the line: {raw[err.start:err.start + 1]!r})", raw.decode("utf-8", "replace")
    if not text.strip():
        return _BLANK, None, text
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        return None, f"invalid JSON ({err.msg} at column {err.colno})", text
    except RecursionError:
        return None, "invalid JSON (nested too deeply)", text
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        return None, f"invalid text: an unpaired surrogate escape ({err.reason})", text
    error = check(obj) if check is not None else None
    return obj, error, text


def _quarantine(qpath: Path, source: Path, bad: list[BadLine]) -> None:
    seen: set[str] = set()
    if qpath.exists():
        with open(qpath, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    seen.add(json.loads(line).get("key", ""))
                except (json.JSONDecodeError, AttributeError):
                    continue
    fresh = []
    for b in bad:
        key = _line_key(source, b.line, b.raw)
        if key not in seen:
            seen.add(key)
            fresh.append({"key": key, "source": str(source), "line": b.line, "error": b.error,
                          "raw": b.raw})
    if fresh:
        append_jsonl(qpath, fresh)
