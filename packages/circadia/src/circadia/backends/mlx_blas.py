"""Give mlx[cpu] on Linux a fast BLAS (imports no mlx: call it before anything imports ``mlx.core``).

The ``mlx[cpu]`` Linux wheels link the netlib *reference* BLAS: a 1024x1024 float32 matmul takes
~0.5 s there against ~0.04 s with OpenBLAS, and a forward pass of SmolLM2-135M on 40 tokens ~10 s.
Loading an OpenBLAS into the global symbol scope before ``mlx.core`` is first imported makes
mlx's BLAS calls resolve to it (the same effect as ``LD_PRELOAD``), with no change to results
beyond float rounding. On Debian/Ubuntu: ``apt-get install libopenblas0-pthread``.

``CIRCADIA_MLX_BLAS=/path/to/libopenblas.so`` picks the library, ``CIRCADIA_MLX_BLAS=0`` turns
this off. macOS (Accelerate) and Windows are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",
)

#: the library loaded by :func:`prefer_openblas` (None: mlx uses the BLAS its wheel ships)
LOADED: str | None = None


def prefer_openblas() -> str | None:
    """Load an OpenBLAS globally if we are on Linux and ``mlx.core`` is not imported yet.

    Returns the path loaded (also kept in :data:`LOADED`), or None when nothing was done: not
    Linux, turned off, ``mlx.core`` already imported (too late to matter), or no OpenBLAS found.
    """
    global LOADED
    choice = os.environ.get("CIRCADIA_MLX_BLAS", "")
    if LOADED or sys.platform != "linux" or choice == "0" or "mlx.core" in sys.modules:
        return LOADED
    candidates = [choice] if choice else [ctypes.util.find_library("openblas"), *_CANDIDATES]
    for path in filter(None, candidates):
        try:
            ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_GLOBAL)
        except OSError as err:
            if choice:
                raise OSError(
                    f"CIRCADIA_MLX_BLAS={choice!r} cannot be loaded ({err}); "
                    "point it to a libopenblas.so or set it to 0"
                ) from err
            continue
        LOADED = path
        return path
    return None


def blas_in_use() -> str:
    """Which BLAS mlx's CPU matmuls use in this process, for logs and benchmark records."""
    if sys.platform == "darwin":
        return "accelerate"
    return LOADED or "mlx wheel's bundled BLAS (reference)"
