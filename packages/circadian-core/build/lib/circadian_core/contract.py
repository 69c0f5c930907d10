"""A study's declared contract: its settings, its metrics and what each means, its typed info.

A study module (the ``entry`` of a study in params.yaml) exposes ``CONTRACT``; the runner checks
what the study returns against it before the record is written, aggregation checks every record
against it before a number is computed, and the report module of that study imports it to read
records as typed objects (``contract.parse(record)``) instead of indexing nested dicts.

>>> import dataclasses
>>> @dataclasses.dataclass
... class Settings:
...     lr: float = 0.1
>>> c = Contract("demo", version=1, settings=Settings,
...              metrics=(Metric("acc", "test accuracy", higher_is_better=True),))
>>> c.check_metrics({"acc": 0.5})
[]
>>> c.check_metrics({"acc": "high"})
["metric 'acc' is 'high', not a finite number"]
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar

from circadian_core.config import ConfigError, from_dict

S = TypeVar("S")
I = TypeVar("I")  # noqa: E741 - the conventional type-variable name for "info"


@dataclasses.dataclass(frozen=True)
class Metric:
    """One scalar a study reports per cell.

    ``nullable``: the value may be None, a declared "not applicable" for some variants (the hidden
    width of a model that has none); every other value must be a finite number.
    """

    name: str
    meaning: str
    unit: str = ""
    higher_is_better: bool | None = None
    nullable: bool = False


@dataclasses.dataclass(frozen=True)
class TypedRecord(Generic[S, I]):
    """A run record read through its study's contract: settings and info are dataclasses."""

    study: str
    variant: str
    seed: int
    settings: S
    metrics: dict[str, float | None]
    info: I
    history: Any
    timings: dict[str, float]
    raw: dict[str, Any] = dataclasses.field(repr=False, compare=False, default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Contract(Generic[S, I]):
    """What one study promises: its settings type, its metrics, the type of its ``info``.

    ``version`` goes into every record the study writes; bump it whenever a metric is added,
    renamed or changes meaning, so records of the old contract are refused instead of mixed in.
    """

    name: str
    version: int
    settings: type[S] | None
    metrics: tuple[Metric, ...]
    info: type[I] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        names = [m.name for m in self.metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"contract {self.name!r} declares metric(s) twice: {', '.join(dupes)}")

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"contract {self.name!r} declares no metric {name!r}; it has {', '.join(self.metric_names)}")

    def check_metrics(self, metrics: Mapping[str, Any]) -> list[str]:
        """Every problem of ``metrics`` against the declaration (empty list: it conforms)."""
        problems = []
        declared = {m.name: m for m in self.metrics}
        for name in metrics:
            if name not in declared:
                problems.append(f"metric {name!r} is not declared by contract {self.name!r}")
        for name, m in declared.items():
            if name not in metrics:
                problems.append(f"metric {name!r} is missing")
                continue
            value = metrics[name]
            if value is None:
                if not m.nullable:
                    problems.append(f"metric {name!r} is None, but the contract does not declare it nullable")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                problems.append(f"metric {name!r} is {value!r}, not a finite number")
        return problems

    def settings_of(self, config: Mapping[str, Any], *, where: str | None = None) -> S:
        """The cell's config as the settings dataclass (strict: unknown keys are errors)."""
        if self.settings is None:
            raise TypeError(f"contract {self.name!r} declares no settings type")
        return from_dict(self.settings, config, where=where or self.name)

    def info_of(self, info: Mapping[str, Any], *, where: str | None = None) -> I:
        """The record's ``info`` as the declared dataclass."""
        if self.info is None:
            raise TypeError(f"contract {self.name!r} declares no info type")
        return from_dict(self.info, info, where=where or f"{self.name} info")

    def parse(self, record: Mapping[str, Any], *, where: str = "record") -> TypedRecord[S, I]:
        """A record dict (as written by the runner) -> :class:`TypedRecord`; ConfigError if it does not conform."""
        version = record.get("contract_version")
        if version != self.version:
            raise ConfigError(
                f"{where}: written under contract {self.name!r} version {version}, the code declares version "
                f"{self.version}; delete it and rerun its cell"
            )
        problems = self.check_metrics(record.get("metrics") or {})
        if problems:
            raise ConfigError(f"{where}: {problems[0]}; delete it and rerun its cell")
        settings = self.settings_of(record.get("config") or {}, where=f"{where} config") if self.settings else None
        info = self.info_of(record.get("info") or {}, where=f"{where} info") if self.info else dict(record.get("info") or {})
        return TypedRecord(
            study=str(record["study"]),
            variant=str(record["variant"]),
            seed=int(record["seed"]),
            settings=settings,  # type: ignore[arg-type]
            metrics=dict(record.get("metrics") or {}),
            info=info,  # type: ignore[arg-type]
            history=record.get("history"),
            timings=dict(record.get("timings") or {}),
            raw=dict(record),
        )


def contract_for(entry: str) -> Contract[Any, Any] | None:
    """The ``CONTRACT`` of a study entry's module (``"pkg.module:run"``), or None if it declares none."""
    module_name, _, _ = entry.partition(":")
    module = importlib.import_module(module_name)
    contract = getattr(module, "CONTRACT", None)
    if contract is not None and not isinstance(contract, Contract):
        raise TypeError(f"{module_name}.CONTRACT is a {type(contract).__name__}, not a circadian_core.contract.Contract")
    return contract


def metrics_table(contract: Contract[Any, Any]) -> Iterable[tuple[str, str, str]]:
    """(name, meaning, unit) rows, for documentation and the paper's metric glossary."""
    return ((m.name, m.meaning, m.unit) for m in contract.metrics)
