"""Artifact files whose bytes depend on their content alone (for DVC's md5 and cross-machine diffs).

``torch.save(obj, path)`` names the zip archive inside the file after ``path``'s stem, so the same
tensors saved at ``.x.pt.building`` and at ``x.pt`` (or by a build that used another temporary
name) give different bytes. :func:`save_torch` always saves through memory (archive name
``archive``) and writes the bytes atomically. What must never enter an artifact: timings, host
names, absolute paths, dates, anything unordered; put those in the build log or a run record.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any


def torch_bytes(obj: Any) -> bytes:
    """The bytes ``torch.save`` writes for ``obj``, independent of any file name."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_torch(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj)`` to ``path`` with content-only bytes, atomically (temporary sibling + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = torch_bytes(obj)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
