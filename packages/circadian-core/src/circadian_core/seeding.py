"""One call seeds every random number generator the project uses."""

from __future__ import annotations

import importlib
import os
import random
import sys
from types import ModuleType

import numpy as np

from circadian_core.config import ConfigError


def _framework(name: str, only_loaded: bool) -> ModuleType | None:
    if only_loaded:
        return sys.modules.get(name)
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _deterministic_torch(torch: ModuleType) -> None:
    # torch.use_deterministic_algorithms imports torch._inductor (2-3 s per process on CPU) just
    # to flip an inductor flag; when inductor is not loaded the C switch alone is equivalent.
    if "torch._inductor" in sys.modules or not hasattr(torch._C, "_set_deterministic_algorithms"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch._C._set_deterministic_algorithms(True, warn_only=True)


def check_seed(seed: object, where: str = "the seed argument") -> int:
    """``seed`` as an int if it is a non-negative int; else one error naming ``where`` (the key to fix).

    A non-int is a ``TypeError``, a negative int a :class:`~circadian_core.config.ConfigError`.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed {seed!r} ({where}): a seed must be a non-negative int; fix {where}")
    if seed < 0:
        raise ConfigError(f"seed {seed} ({where}): a seed must be a non-negative int; fix {where}")
    return int(seed)


def seed_everything(
    seed: int, *, deterministic: bool = True, only_loaded: bool = False, where: str = "the seed argument"
) -> np.random.Generator:
    """Seed python, numpy, torch and mlx (when installed); return a fresh numpy ``Generator``.

    With ``deterministic`` torch is asked for deterministic kernels (``warn_only``), so the same
    seed gives the same CPU result bit for bit. With ``only_loaded`` torch and mlx are seeded only
    if already imported (the runner imports the study first, so a NumPy-only study does not pay
    for importing torch). ``where`` names the setting the seed came from (a params.yaml key), so a
    bad seed is one error naming the key to fix: an int >= 0 (numpy's generators refuse negatives).
    """
    seed = check_seed(seed, where)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (legacy global state, for third-party code)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    torch = _framework("torch", only_loaded)
    if torch is not None:
        torch.manual_seed(seed)
        if deterministic:
            _deterministic_torch(torch)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    mx = _framework("mlx.core", only_loaded)
    if mx is not None:
        mx.random.seed(seed)
    return np.random.default_rng(seed)
