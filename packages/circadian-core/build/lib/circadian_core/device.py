"""Pick the compute device: cuda > mps > cpu, or exactly what the user asked for."""

from __future__ import annotations

VALID = ("auto", "cpu", "cuda", "mps", "mlx")


def _torch_has(kind: str) -> bool:
    try:
        import torch
    except ImportError:
        return False
    if kind == "cuda":
        return bool(torch.cuda.is_available())
    if kind == "mps":
        backend = getattr(torch.backends, "mps", None)
        return bool(backend is not None and backend.is_available())
    return False


def available_devices() -> list[str]:
    """Devices usable on this machine, best first (``cpu`` is always last)."""
    found = [kind for kind in ("cuda", "mps") if _torch_has(kind)]
    return [*found, "cpu"]


def pick_device(requested: str | None = "auto") -> str:
    """Return the device to run on.

    ``auto`` (or ``None``) picks cuda > mps > cpu. An explicit ``cuda``/``mps`` that this machine
    lacks raises a ``RuntimeError`` that names the fix; ``cuda:1`` style indices are kept.
    ``mlx`` is passed through for the MLX backend (Apple Silicon or ``mlx[cpu]``).
    """
    if requested is None or requested == "auto":
        return available_devices()[0]
    kind = requested.split(":", 1)[0]
    if kind not in VALID:
        raise ValueError(f"unknown device {requested!r}; use one of {', '.join(VALID)}")
    if kind in ("cuda", "mps") and not _torch_has(kind):
        raise RuntimeError(
            f"device {requested!r} was requested but is not available here "
            f"(available: {', '.join(available_devices())}); pass --device auto or --device cpu"
        )
    return requested
