"""The BLAS swap for mlx[cpu] on Linux: off switch, clear error, same numbers (in fresh processes,
since it only acts before mlx.core is first imported)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("mlx", reason="mlx is not installed (pip install 'circadia[mlx]')")

PROBE = """
import numpy as np
from circadia.backends import mlx_blas
mlx_blas.prefer_openblas()  # what circadia.backends.mlx_backend does before importing mlx.core
import mlx.core as mx
a = np.random.default_rng(0).standard_normal((300, 200)).astype(np.float32)
b = np.random.default_rng(1).standard_normal((200, 100)).astype(np.float32)
err = float(np.abs(np.array(mx.array(a) @ mx.array(b)) - a.astype(np.float64) @ b).max())
print(mlx_blas.LOADED, err, mlx_blas.blas_in_use(), sep="|")
"""


def _probe(**env):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    return proc


def test_default_and_off_switch_give_correct_matmuls():
    on, off = _probe(), _probe(CIRCADIA_MLX_BLAS="0")
    assert on.returncode == 0 and off.returncode == 0, on.stderr + off.stderr
    loaded_on, err_on, _ = on.stdout.strip().split("|")
    loaded_off, err_off, used_off = off.stdout.strip().split("|")
    assert float(err_on) < 1e-3 and float(err_off) < 1e-3
    assert loaded_off == "None"
    if sys.platform == "linux":
        assert "reference" in used_off
        assert loaded_on == "None" or "openblas" in loaded_on  # an OpenBLAS when the machine has one


def test_a_bad_path_is_one_clear_error():
    proc = _probe(CIRCADIA_MLX_BLAS="/no/such/libopenblas.so")
    if sys.platform != "linux":
        assert proc.returncode == 0
        return
    assert proc.returncode != 0
    assert "CIRCADIA_MLX_BLAS='/no/such/libopenblas.so' cannot be loaded" in proc.stderr
    assert "set it to 0" in proc.stderr


def test_too_late_is_a_no_op(monkeypatch):
    import mlx.core  # noqa: F401

    from circadia.backends import mlx_blas

    monkeypatch.setattr(mlx_blas, "LOADED", None)
    monkeypatch.setenv("CIRCADIA_MLX_BLAS", "/no/such/libopenblas.so")
    assert mlx_blas.prefer_openblas() is None  # mlx.core is loaded: nothing to gain, nothing raised
