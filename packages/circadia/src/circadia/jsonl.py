"""JSONL that never loses a line: durable appends, and reads that quarantine what they cannot parse.

- :func:`append_jsonl` appends one record with ``O_APPEND`` + ``fsync`` (a crash leaves either the
  whole line or none of it - a torn last line is caught by the reader) and keeps the file at mode
  0600 (chat logs are private).
- :func:`read_jsonl` returns the valid records and, for every line that is not valid JSON or fails
  the caller's check, reports the file and line number (stderr, and in the result) and copies the line verbatim into a
  quarantine file next to it (once per line: rereading does not duplicate entries). The source
  file is never modified.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRIVATE_MODE = 0o600


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
    """Append one record (or several) durably; the file is created with mode 0600 when ``private``."""
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
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


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
) -> ReadResult:
    """Valid records of ``path`` from line ``start_line`` (1-based) on; bad lines quarantined.

    ``check(obj)`` returns an error string for a parsed object that is not usable (or None).
    ``quarantine`` defaults to ``<stem>.quarantine.jsonl`` beside ``path``; each entry records the
    source file, line number, error and the raw line. Blank lines are ignored.
    """
    path = Path(path)
    qpath = Path(quarantine) if quarantine is not None else quarantine_path(path)
    result = ReadResult(records=[], line_numbers=[], quarantine=qpath)
    if not path.exists():
        return result
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno < start_line:
                continue
            text = raw.rstrip("\n")
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
                error = check(obj) if check is not None else None
            except json.JSONDecodeError as err:
                error = f"invalid JSON ({err.msg} at column {err.colno})"
            except UnicodeError as err:  # pragma: no cover - surrogateescape keeps reads going
                error = f"invalid text encoding ({err})"
            if error is None:
                result.records.append(obj)
                result.line_numbers.append(lineno)
            else:
                result.bad.append(BadLine(str(path), lineno, error, text))
    if result.bad:
        _quarantine(qpath, path, result.bad)
        if warn:
            for bad in result.bad:
                print(f"warning: corrupt line skipped: {bad.message()} -> quarantined in {qpath}", file=sys.stderr)
    return result


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
                          "raw": b.raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")})
    if fresh:
        append_jsonl(qpath, fresh)


def write_json_atomic(path: str | Path, obj: Any, *, private: bool = False) -> Path:
    """Write JSON to ``path`` via a fsynced temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, ensure_ascii=False, default=_default)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    if private:
        os.chmod(tmp, PRIVATE_MODE)
    tmp.replace(path)
    return path


def _default(obj: Any) -> Any:
    if hasattr(obj, "to_json"):
        return obj.to_json()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
