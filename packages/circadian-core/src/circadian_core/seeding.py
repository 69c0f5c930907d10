"""One call seeds every random number generator the project uses."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int, *, deterministic: bool = True) -> np.random.Generator:
    """Seed python, numpy, torch and mlx (when installed); return a fresh numpy ``Generator``.

    With ``deterministic`` torch is asked for deterministic kernels (``warn_only``), so the same
    seed gives the same CPU result bit for bit.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (legacy global state, for third-party code)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.manual_seed(seed)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    try:
        import mlx.core as mx
    except ImportError:
        pass
    else:
        mx.random.seed(seed)
    return np.random.default_rng(seed)
