"""Checksummed downloads that fail offline with an error naming the file to place by hand."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm


class DatasetUnavailableError(RuntimeError):
    """The file is not here and could not be downloaded."""


class ChecksumError(RuntimeError):
    """A file's checksum does not match the expected one."""


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def network_available(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url``'s host answers a TCP connection now (False under ``CIRCADIAN_OFFLINE=1``).

    Only asked on an error path, to tell the user a fix that works where they are: a machine
    without network cannot "rerun to download again".
    """
    if os.environ.get("CIRCADIAN_OFFLINE") == "1":
        return False
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path)).exists()
    if not parts.hostname:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _check(path: Path, checksum: str, algorithm: str, url: str, *, online: bool | None = None) -> None:
    actual = file_digest(path, algorithm)
    if actual != checksum:
        if online is None:
            online = network_available(url)
        fix = (
            "delete it and rerun to download it again, or place the right file there"
            if online
            else f"this machine cannot download it: delete it, download {url} on a machine with network "
            f"access and place that file at {path}"
        )
        raise ChecksumError(
            f"{path}: {algorithm} is {actual}, expected {checksum}. The file is corrupt or a different release: {fix}"
        )


def fetch(
    url: str,
    dest: str | os.PathLike[str],
    checksum: str,
    *,
    algorithm: str = "sha256",
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Return ``dest``, downloading ``url`` there first when it is missing.

    An existing file is verified (``ChecksumError`` when it does not match; it is never deleted).
    With no network, or with ``CIRCADIAN_OFFLINE=1``, raise ``DatasetUnavailableError`` naming
    the URL, the path to place the file at by hand, and its checksum.
    """
    dest = Path(dest)
    if dest.exists():
        _check(dest, checksum, algorithm, url)
        return dest
    by_hand = (
        f"download {url} on a machine with network access and place it at {dest} "
        f"({algorithm} {checksum}), then rerun"
    )
    if os.environ.get("CIRCADIAN_OFFLINE") == "1":
        raise DatasetUnavailableError(f"{dest.name} is not here and CIRCADIAN_OFFLINE=1: {by_hand}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        _check(tmp, checksum, algorithm, url, online=True)
        shutil.move(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        tmp.unlink(missing_ok=True)
        raise DatasetUnavailableError(f"could not download {url} ({err}): {by_hand}") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Where downloads go: ``root``, else ``$CIRCADIAN_DATA``, else ``./data``."""
    return Path(root or os.environ.get("CIRCADIAN_DATA") or "data")
