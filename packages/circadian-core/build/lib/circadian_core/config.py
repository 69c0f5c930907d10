"""Strict configs: dataclasses built from dicts, with errors that name the fix."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message says which and how to fix it."""


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return ``base`` updated recursively with ``override`` (neither input is modified)."""
    out = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.4)
    return f" (did you mean {close[0]!r}?)" if close else ""


def bounded(default: Any = dataclasses.MISSING, *, low: float | None = None, high: float | None = None,
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field whose value must lie in ``[low, high]`` (checked by :func:`from_dict`).

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class C:
    ...     fraction: float = bounded(0.2, low=0.0, high=1.0)
    >>> from_dict(C, {"fraction": 1.5})
    Traceback (most recent call last):
    ...
    circadian_core.config.ConfigError: config.fraction: 1.5 is out of range; it must be <= 1.0
    """
    meta = {"low": low, "high": high}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _check_range(value: Any, meta: Mapping[str, Any], where: str) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low, high = meta.get("low"), meta.get("high")
    if value != value:  # NaN
        raise ConfigError(f"{where}: NaN is not a valid value")
    if low is not None and value < low:
        raise ConfigError(f"{where}: {value!r} is out of range; it must be >= {low}")
    if high is not None and value > high:
        raise ConfigError(f"{where}: {value!r} is out of range; it must be <= {high}")


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return from_dict(hint, value, where=where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} does not match {hint}")
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float:
        extra = ""
        if isinstance(value, str):
            try:
                float(value)
                extra = f" (YAML reads {value} as text: write it with a decimal point, e.g. {float(value)!r})"
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}{extra}")
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected an int, got {value!r}")
    if hint in (int, str, bool) and not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        (inner, *_) = typing.get_args(hint) or (Any,)
        items = [_coerce(v, inner, f"{where}[{i}]") if inner is not Any else v for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if typing.get_origin(hint) is typing.Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, allowed))}")
    return value


def from_dict(cls: type[T], data: Mapping[str, Any] | None, *, where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong scalar types.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class C:
    ...     lr: float = 0.1
    >>> from_dict(C, {"lr": 1})
    C(lr=1.0)
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        raise ConfigError(
            f"{where}: unknown key {key!r}{_suggest(key, list(fields))}; "
            f"valid keys are: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(v, hints.get(k, Any), f"{where}.{k}") for k, v in data.items()}
    for k, v in kwargs.items():
        if fields[k].metadata:
            _check_range(v, fields[k].metadata, f"{where}.{k}")
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing required key(s): {', '.join(missing)}")
    return cls(**kwargs)


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass instance as a plain (JSON-ready) dict."""
    return dataclasses.asdict(obj)
