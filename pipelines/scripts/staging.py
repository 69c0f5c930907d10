"""Build a stage's outputs in temporary siblings and swap them into place only when all are complete.

A stage that writes several outputs (aggregate: CSV folder, TeX tables, macros.tex, sections.tex)
must never leave a mix of new and half-written files: on a full disk or a failing report the
previous outputs stay exactly as they were and no temporary file is left behind.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> with Staging() as stage:
...     tables = stage.folder(root / "tables")
...     _ = (tables / "a.csv").write_text("x\\n")
...     _ = stage.file(root / "macros.tex").write_text("% m\\n")
>>> sorted(p.name for p in root.iterdir())
['macros.tex', 'tables']
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import TracebackType

SUFFIX = ".staging"
OLD = ".replaced"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def staging_path(final: Path) -> Path:
    """The temporary sibling of ``final``: hidden, fixed name, so a killed run's leftover is cleared next time."""
    return final.with_name(f".{final.name}{SUFFIX}")


class Staging:
    """Temporary siblings for a set of outputs; :meth:`commit` renames each into place.

    Use as a context manager: leaving the block normally commits, an exception removes every
    temporary sibling and leaves the previous outputs untouched.
    """

    def __init__(self) -> None:
        self.pairs: list[tuple[Path, Path]] = []

    def folder(self, final: str | os.PathLike[str]) -> Path:
        """An empty temporary folder that will replace folder ``final`` as a whole."""
        final = Path(final)
        tmp = staging_path(final)
        _remove(tmp)
        tmp.mkdir(parents=True)
        self.pairs.append((final, tmp))
        return tmp

    def file(self, final: str | os.PathLike[str]) -> Path:
        """A temporary path to write; it replaces file ``final``."""
        final = Path(final)
        tmp = staging_path(final)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        _remove(tmp)
        self.pairs.append((final, tmp))
        return tmp

    def commit(self) -> None:
        """Swap every staged output into place (renames only: nothing left to fail on a full disk)."""
        missing = [str(tmp) for _, tmp in self.pairs if not tmp.exists()]
        if missing:
            self.abort()
            raise FileNotFoundError(f"staged output(s) never written: {', '.join(missing)}")
        for final, tmp in self.pairs:
            if final.is_dir() and not final.is_symlink():
                old = final.with_name(f".{final.name}{OLD}")
                _remove(old)
                final.rename(old)
                tmp.rename(final)
                shutil.rmtree(old)
            else:
                os.replace(tmp, final)
        self.pairs = []

    def abort(self) -> None:
        """Remove every temporary sibling; the previous outputs stay as they were."""
        for _, tmp in self.pairs:
            _remove(tmp)
        self.pairs = []

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()
