"""Continual-learning methods, one file each, behind a name -> class registry (as Mammoth's ``models/``).

``get_method(name)`` returns the class; ``hal_sleep_wake.config.Method`` lists the same names as a
``Literal`` (a test keeps the two equal). Adding a method: a file here with a ``Method`` subclass
decorated with :func:`register`, its name in ``config.Method``, and its line in ``plan.METHOD_TEXT``.
"""

from __future__ import annotations

from hal_sleep_wake.methods.base import Method

_REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``cls`` available as ``method: <cls.name>``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"method {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls
    return cls


def get_method(name: str) -> type[Method]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; registered: {', '.join(sorted(_REGISTRY))}") from None


def method_names() -> list[str]:
    return sorted(_REGISTRY)


# every method file registers itself on import
from hal_sleep_wake.methods import agem, derpp, er, ewc, finetune, hal, joint, lwf  # noqa: E402,F401

__all__ = ["Method", "get_method", "method_names", "register"]
