"""Backends: where circadia's model runs (torch+peft, or MLX). See :mod:`circadia.backends.base`."""

from circadia.backends.base import (
    BACKENDS,
    Backend,
    Example,
    TrainConfig,
    TrainReport,
    backend_class,
    collate,
    lr_at,
    make_backend,
    register_backend,
    tokenize_chat,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "Example",
    "TrainConfig",
    "TrainReport",
    "backend_class",
    "collate",
    "lr_at",
    "make_backend",
    "register_backend",
    "tokenize_chat",
]
