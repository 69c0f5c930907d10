"""``circadia nights N``: a simulated user's days, one night after each.

Day ``i`` imports the shipped log ``days/day{i:02d}.jsonl`` (cycling when N exceeds the days
shipped) into the home's memories, then sleeps once. Fact recall is measured with the probes of
every day seen so far.
"""

from __future__ import annotations

from pathlib import Path

from circadia.config import NightConfig
from circadia.data import day_paths
from circadia.data import probes as shipped_probes
from circadia.home import Home
from circadia.journal import Journal, import_log
from circadia.sleep.night import Log, NightRecord, open_hippocampus, run_night, stderr_log
from circadia.sleep.record import ImportSummary


def simulated_turns(n_nights: int, days: list[Path] | None = None):
    """The turns ``simulate_nights`` imports over ``n_nights`` days, in order (ids as in the journal)."""
    import json

    from circadia.journal import check_turn, turn_from_json

    days = list(days) if days is not None else day_paths()
    out = []
    for i in range(1, n_nights + 1):
        lap = (i - 1) // len(days)
        with open(days[(i - 1) % len(days)], encoding="utf-8") as fh:
            objs = [json.loads(line) for line in fh if line.strip()]
        for obj in objs:
            if check_turn(obj) is not None:
                continue
            t = turn_from_json(obj, source="import")
            t.id = (f"lap{lap}-" if lap else "") + t.id
            out.append(t)
    return out


def simulate_nights(
    home: Home | str | Path,
    n_nights: int,
    cfg: NightConfig,
    *,
    days: list[Path] | None = None,
    day_probes: list[dict] | None = None,
    model_dir: str | Path | None = None,
    backend=None,
    log: Log | None = stderr_log,
    first_day: int = 1,
) -> list[NightRecord]:
    """Import day ``i``'s log and sleep once, for ``n_nights`` days; the nights' records.

    One backend and one store serve every night: a night that ends with the adapter the next
    one starts from hands its weights over without reloading them."""
    home = home if isinstance(home, Home) else Home(home)
    home.init()
    days = list(days) if days is not None else day_paths()
    day_probes = shipped_probes() if day_probes is None else day_probes
    if not days:
        raise FileNotFoundError("no day logs to simulate")
    if model_dir is None:
        from circadia.models import resolve_model

        model_dir = resolve_model(cfg.model)
    journal = Journal(home.memories)
    store = None
    records = []
    for i in range(first_day, first_day + n_nights):
        path = days[(i - 1) % len(days)]
        lap = (i - 1) // len(days)
        # a later lap replays the same conversations as new turns (new ids)
        count, res = import_log(path, journal, id_prefix=f"lap{lap}-" if lap else "", sim_day=i)
        seen = {(i2 - 1) % len(days) + 1 for i2 in range(1, i + 1)}
        probes = [p for p in day_probes if p.get("day") in seen]
        if store is None and (cfg.router.enabled or probes):
            store = open_hippocampus(home, cfg)
        if backend is None:
            from circadia.backends.base import make_backend

            backend = make_backend(cfg.backend, device=cfg.device, dtype=cfg.dtype)
        rec = run_night(home, cfg, tag=f"day{i:02d}", probes=probes, model_dir=model_dir, store=store, backend=backend, log=log)
        rec.imported = ImportSummary(file=path.name, turns=count, corrupt_lines=len(res.bad))
        records.append(rec)
    return records
