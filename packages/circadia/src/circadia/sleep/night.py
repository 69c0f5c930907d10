"""One night (``circadia cycle``): the phases of :mod:`circadia.sleep.phases` over a typed
:class:`~circadia.sleep.record.NightRecord`, then an idempotent commit.

Safety: the night writes its adapter into ``adapters/.tmp-night-NNN`` and only the final rename +
the atomic rewrite of ``state.json`` make it current, so a night killed at any point leaves the
previous adapter, state and logs as they were (``memories.jsonl`` is only ever read). A non-finite
training loss aborts the night: no adapter, the memories stay unconsumed for the next night.

The commit order makes ``experiments.jsonl`` exact under a kill: ``night.json`` is written, then
``state.json`` (the commit point), then the experiments row. A kill before the state write leaves
no row (the night reruns and writes one); a kill after it leaves the row missing, and the next
night appends it from ``night.json`` before it starts (:func:`reconcile_experiments`). Each
attempt's row is written once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from circadia.backends.base import Backend
from circadia.config import NightConfig
from circadia.home import Home, HomeLock, State
from circadia.jsonl import append_jsonl
from circadia.quarantine import write_quarantine
from circadia.sleep.context import Log, NightContext, quiet, stderr_log
from circadia.sleep.phases import PHASES, open_hippocampus, recall, resolve_base
from circadia.sleep.record import NightRecord
from circadian_core.record import write_json_atomic

__all__ = ["Log", "NightRecord", "open_hippocampus", "reconcile_experiments", "resolve_base", "run_night", "stderr_log"]


def run_night(
    home: Home | str | Path,
    cfg: NightConfig,
    *,
    tag: str = "",
    probes: list[dict] | None = None,
    model_dir: str | Path | None = None,
    backend: Backend | None = None,
    store=None,
    log: Log | None = stderr_log,
    hooks: dict[str, Callable[..., Any]] | None = None,
) -> NightRecord:
    """Sleep once on the memories that arrived since the last night; returns the night's record
    (also appended to ``experiments.jsonl``). ``hooks`` (tests) may hold ``after_train(report)``,
    ``before_state(record)`` and ``after_state(record)``."""
    home = home if isinstance(home, Home) else Home(home)
    home.init()
    say = log or quiet
    with HomeLock(home):
        home.recover(say, retention_days=cfg.retention_days)  # leftovers, a damaged adapter, retention
        state = home.load_state()
        if reconcile_experiments(home, state):
            say("experiments.jsonl: appended the row of the last night (it was interrupted before logging it)")
        ctx = _start(home, cfg, state, tag=tag, probes=probes, model_dir=model_dir, backend=backend, store=store,
                     say=say, hooks=hooks or {})
        t_start = time.perf_counter()
        for name, phase in PHASES:
            t = time.perf_counter()
            phase(ctx)
            setattr(ctx.record.timings, name, time.perf_counter() - t)
            if ctx.record.status is not None:
                break
        t = time.perf_counter()
        recall(ctx)
        ctx.record.timings.recall = time.perf_counter() - t
        ctx.record.timings.total = time.perf_counter() - t_start
        _commit(ctx)
        return ctx.record


def _start(home: Home, cfg: NightConfig, state: State, *, tag, probes, model_dir, backend, store, say, hooks) -> NightContext:
    n = state.nights + 1
    night_dir = home.night_dir(n)
    if night_dir.exists():  # a previous attempt at this night (aborted or killed): keep it aside
        night_dir.rename(night_dir.with_name(f"{night_dir.name}-attempt-{state.attempts}-{int(time.time())}"))
    night_dir.mkdir(parents=True)
    record = NightRecord(night=n, attempt=state.attempts + 1, tag=tag, started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                         seed=int(cfg.seed) * 1000 + n, config=cfg)
    say(f"night {n}: start (attempt {record.attempt})")
    return NightContext(home=home, cfg=cfg, state=state, record=record, night_dir=night_dir, say=say, hooks=hooks,
                        probes=probes, model_dir=None if model_dir is None else Path(model_dir), backend=backend, store=store)


def _commit(ctx: NightContext) -> None:
    """night.json, then state.json (the commit point), then the experiments row."""
    state, record = ctx.state, ctx.record
    state.attempts = record.attempt
    if record.status.decided:
        state.nights += 1
    state.history.append({"night": record.night, "status": record.status.value, "adapter": state.current_adapter,
                          "attempt": record.attempt})
    record.quarantined = list(ctx.quarantined)
    write_quarantine(ctx.night_dir / "quarantine.jsonl", record.quarantined)
    write_json_atomic(ctx.night_dir / "night.json", record.to_json(), private=True)
    ctx.hook("before_state", record)
    ctx.home.save_state(state)
    ctx.hook("after_state", record)
    _log_experiment(ctx.home, record.to_json())


def _log_experiment(home: Home, row: dict[str, Any]) -> None:
    append_jsonl(home.experiments, row, private=False)


def _logged_attempts(home: Home) -> set[int]:
    if not home.experiments.exists():
        return set()
    out = set()
    for line in home.experiments.read_text(encoding="utf-8").splitlines():
        try:
            att = json.loads(line).get("attempt")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(att, int):
            out.add(att)
    return out


def reconcile_experiments(home: Home, state: State) -> bool:
    """Append the last committed night's row to ``experiments.jsonl`` if a kill lost it; True if it did."""
    last = state.history[-1] if state.history else None
    if not last or "attempt" not in last or last["attempt"] in _logged_attempts(home):
        return False
    saved = home.night_dir(int(last["night"])) / "night.json"
    if not saved.exists():
        return False
    row = json.loads(saved.read_text(encoding="utf-8"))
    if row.get("attempt") != last["attempt"]:
        return False
    _log_experiment(home, row)
    return True
