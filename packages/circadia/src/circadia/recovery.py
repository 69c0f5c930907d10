"""Model versions of a home: which one is current, is it usable, and going back to an earlier one.

A *version* is what a night accepted: ``adapters/night-NNN`` on its base model, or
``models/night-NNN`` when it was merged; version 0 is the configured base model itself.

- :func:`usable_version`: the current version if its files are sound; a non-finite adapter gives
  the last good version instead (and the problem), a truncated or unreadable one an error naming
  the file and the fix.
- :func:`ensure_usable_model`: the same, made permanent - the non-finite adapter is set aside in
  ``adapters/corrupt/`` and ``state.json`` points at the fallback (what a night does first).
- :func:`rollback`: ``circadia rollback [VERSION]``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from circadia.adapter_check import AdapterProblem, check_adapter
from circadia.home import Home, HomeError, State

NIGHT = re.compile(r"^night-(\d{3,})$")


@dataclass(frozen=True)
class Version:
    night: int  # 0: the configured base model
    adapter: str | None  # relative to the home
    base_model: str | None  # relative to the home; None: the configured model

    def describe(self) -> str:
        return "the base model (version 0)" if self.night == 0 else f"version {self.night} ({self.adapter or self.base_model})"


def _rel(home: Home, path: str | None) -> str | None:
    if not path:
        return None
    try:
        return str(Path(path).resolve().relative_to(home.root.resolve()))
    except ValueError:
        return None  # outside the home: the configured model


def versions(home: Home) -> list[Version]:
    """Every accepted version on disk, oldest first, version 0 (the base model) included."""
    found: dict[int, Version] = {0: Version(0, None, None)}
    if home.adapters.exists():
        for p in home.adapters.iterdir():
            m = NIGHT.match(p.name)
            if m and p.is_dir():
                meta = p / "circadia_adapter.json"
                try:
                    base = json.loads(meta.read_text()).get("base_model") if meta.exists() else None
                except (OSError, ValueError, AttributeError):
                    base = None
                found[int(m.group(1))] = Version(int(m.group(1)), str(p.relative_to(home.root)), _rel(home, base))
    if home.models.exists():
        for p in home.models.iterdir():
            m = NIGHT.match(p.name)
            if m and (p / "config.json").exists():
                found[int(m.group(1))] = Version(int(m.group(1)), None, str(p.relative_to(home.root)))
    return [found[k] for k in sorted(found)]


def current_version(home: Home, state: State) -> Version:
    for v in versions(home):
        if (v.adapter, v.base_model) == (state.current_adapter, state.base_model):
            return v
    # not an accepted version on disk (an adapter from outside, or a missing folder): name it as is
    m = NIGHT.search(Path(state.current_adapter or state.base_model or "night-000").name)
    return Version(int(m.group(1)) if m else -1, state.current_adapter, state.base_model)


def problem_of(home: Home, v: Version) -> AdapterProblem | None:
    """What makes version ``v`` unusable (None: nothing)."""
    if v.base_model is not None and not (home.root / v.base_model / "config.json").exists():
        return AdapterProblem("corrupt", home.root / v.base_model, "merged model folder is missing or has no config.json")
    return check_adapter(home.root / v.adapter) if v.adapter is not None else None


def last_good(home: Home, below: int) -> Version:
    """The newest sound version older than ``below`` (version 0, the base model, at worst)."""
    for v in reversed(versions(home)):
        if v.night < below and problem_of(home, v) is None:
            return v
    return Version(0, None, None)


def usable_version(home: Home, state: State | None = None) -> tuple[Version, AdapterProblem | None]:
    """``(version to load, problem with the current one or None)``; raises :class:`HomeError`
    (naming the file and the fix) when the current version is truncated or unreadable."""
    state = state or home.load_state()
    cur = current_version(home, state)
    problem = problem_of(home, cur)
    if problem is None:
        return cur, None
    fallback = last_good(home, cur.night if cur.night >= 0 else 10**9)
    if problem.kind != "nonfinite":
        raise HomeError(f"the current model is unusable: {problem}. Fix: `circadia rollback` returns to "
                        f"{fallback.describe()} (or restore the file from a backup)")
    return fallback, problem


def ensure_usable_model(home: Home) -> list[str]:
    """:func:`usable_version`, made permanent: state.json points at the fallback first, then the
    non-finite adapter is moved to ``adapters/corrupt/`` (a crash in between leaves a consistent
    home). Returns what was done (empty when the current version is sound)."""
    state = home.load_state()
    target, problem = usable_version(home, state)
    if problem is None:
        return []
    bad = state.current_adapter
    _select(home, state, target, status="fallback", reason=str(problem))
    msg = f"{problem}: never loaded; now using {target.describe()}"
    if bad is not None and (home.root / bad).exists():
        aside = home.adapters / "corrupt" / f"{Path(bad).name}-{int(time.time())}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        (home.root / bad).rename(aside)
        msg += f"; set aside in {aside}"
    return [msg]


def _select(home: Home, state: State, v: Version, *, status: str, reason: str = "") -> None:
    state.current_adapter, state.base_model = v.adapter, v.base_model
    state.eval_cache = {}
    state.history.append({"night": state.nights, "status": status, "adapter": v.adapter, "base_model": v.base_model,
                          "version": v.night, **({"reason": reason} if reason else {})})
    home.save_state(state)


def rollback(home: Home, target: int | None = None) -> Version:
    """Make version ``target`` current (None: the newest sound version older than the current
    one; 0: the base model). The caller holds the home's lock. Memories already slept on stay
    consumed; later versions stay on disk (a rollback can be undone by rolling "back" to them)."""
    state = home.load_state()
    cur = current_version(home, state)
    known = versions(home)
    if target is None:
        if cur.night == 0:
            raise HomeError("already at the base model (version 0): nothing to roll back")
        v = last_good(home, cur.night if cur.night > 0 else 10**9)
    else:
        match = [v for v in known if v.night == target]
        if not match:
            raise HomeError(f"no version {target} in {home.root}; versions: {', '.join(str(v.night) for v in known)}")
        v = match[0]
    problem = problem_of(home, v)
    if problem is not None:
        raise HomeError(f"version {v.night} is unusable: {problem}; pick another (versions: {', '.join(str(k.night) for k in known)})")
    _select(home, state, v, status="rollback")
    return v
