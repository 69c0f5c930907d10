"""One night: pre-eval, route, dream, train, post-eval, decide, log (``circadia cycle``).

Safety: the night writes its adapter into ``adapters/.tmp-night-NNN`` and only the final rename +
the atomic rewrite of ``state.json`` make it current, so a night killed at any point leaves the
previous adapter, state and logs as they were (``memories.jsonl`` is only ever read). A non-finite
training loss aborts the night: no adapter, the memories stay unconsumed for the next night.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from circadia.backends.base import Example, make_backend
from circadia.config import NightConfig
from circadia.data import harness_items, load_replay_set, old_core
from circadia.dreamer import dream
from circadia.evaluation import is_heldout, probe_recall, run_harness, safe_loss, select_harness, self_recall
from circadia.hippocampus import make_embedder, open_store
from circadia.home import Home, HomeLock, State
from circadia.journal import Journal
from circadia.jsonl import append_jsonl, write_json_atomic
from circadia.quarantine import QuarantinedTurn, write_quarantine
from circadia.router import route
from circadia.sleep.batches import build_batches, mix_summary, screen_examples, write_batches

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(f"[circadia {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def resolve_base(home: Home, state: State, cfg: NightConfig, model_dir: str | Path | None) -> Path:
    if state.base_model is not None:
        return home.root / state.base_model
    if model_dir is not None:
        return Path(model_dir)
    from circadia.models import resolve_model

    return resolve_model(cfg.model)


def open_hippocampus(home: Home, cfg: NightConfig, embedder=None):
    from circadia.hippocampus import chroma_available

    kind = cfg.store if cfg.store != "auto" else ("chroma" if chroma_available() else "numpy")
    return open_store(home.store_dir(kind), embedder or make_embedder(cfg.embedder), kind)


def _eval_key(base: Path, adapter: str | None, cfg: NightConfig) -> str:
    return json.dumps([str(base), adapter, cfg.eval.harness_per_category, cfg.eval.harness_max_tokens,
                       cfg.eval.old_core_items, cfg.backend])


def evaluate(backend, cfg: NightConfig, *, heldout: list[Example], seed: int, cached: dict | None = None) -> dict[str, Any]:
    """Held-out loss (always recomputed: new held-out chats arrive daily), old-core loss and harness
    (taken from ``cached`` when the model is unchanged since they were measured)."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"heldout_loss": safe_loss(backend, heldout), "n_heldout": len(heldout)}
    t1 = time.perf_counter()
    if cached:
        out.update({k: cached[k] for k in ("old_core_loss", "harness")})
        out["cached"] = True
    else:
        core = old_core("eval")[: cfg.eval.old_core_items] if cfg.eval.old_core_items is not None else old_core("eval")
        out["old_core_loss"] = safe_loss(backend, core)
        items = select_harness(harness_items(), cfg.eval.harness_per_category)
        out["harness"] = run_harness(backend, items, max_tokens=cfg.eval.harness_max_tokens, seed=seed)
    out["seconds"] = {"heldout": t1 - t0, "rest": time.perf_counter() - t1}
    return out


def _flat_eval(ev: dict[str, Any] | None, prefix: str) -> dict[str, Any]:
    if not ev:
        return {}
    row = {f"{prefix}_heldout_loss": ev.get("heldout_loss"), f"{prefix}_old_core_loss": ev.get("old_core_loss")}
    h = ev.get("harness") or {}
    row[f"{prefix}_harness"] = h.get("pass_rate")
    for cat, v in (h.get("per_category") or {}).items():
        row[f"{prefix}_harness_{cat}"] = v
    return row


def run_night(
    home: Home | str | Path,
    cfg: NightConfig,
    *,
    tag: str = "",
    probes: list[dict] | None = None,
    model_dir: str | Path | None = None,
    backend=None,
    store=None,
    log: Log | None = _stderr,
    hooks: dict[str, Callable[..., Any]] | None = None,
) -> dict[str, Any]:
    """Sleep once on the memories that arrived since the last night; returns the night's record
    (also appended to ``experiments.jsonl``). ``hooks`` (tests) may hold ``after_train(report)``."""
    home = home if isinstance(home, Home) else Home(home)
    home.init()
    say = log or (lambda _m: None)
    hooks = hooks or {}
    with HomeLock(home):
        home.recover(say, retention_days=cfg.retention_days)  # leftovers, a damaged adapter, retention
        return _night(home, cfg, tag=tag, probes=probes, model_dir=model_dir, backend=backend, store=store, say=say, hooks=hooks)


def _night(home, cfg, *, tag, probes, model_dir, backend, store, say, hooks) -> dict[str, Any]:
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    state = home.load_state()
    n = state.nights + 1
    seed = int(cfg.seed) * 1000 + n
    night_dir = home.night_dir(n)
    if night_dir.exists():  # a previous attempt at this night (aborted or killed): keep it aside
        night_dir.rename(night_dir.with_name(f"{night_dir.name}-attempt-{state.attempts}-{int(time.time())}"))
    night_dir.mkdir(parents=True)
    record: dict[str, Any] = {"night": n, "tag": tag, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "config": cfg.to_json(), "seed": seed}

    # ---- memories: all turns (held-out split over everything), new ones since the last night
    t = time.perf_counter()
    journal = Journal(home.memories)
    turns, lines, read = journal.read()
    bad = [b.message() for b in read.bad]
    if bad:
        say(f"{len(bad)} corrupt line(s) in {home.memories} quarantined to {read.quarantine}")
    heldout_turns = [tu for tu in turns if is_heldout(tu.id, cfg.eval.heldout_fraction)]
    new_turns = [(tu, ln) for tu, ln in zip(turns, lines) if ln > state.consumed_lines]
    train_turns = [tu for tu, _ in new_turns if not is_heldout(tu.id, cfg.eval.heldout_fraction)]
    # the last line this read saw (valid or quarantined): turns a chat appends while we sleep wait for tomorrow
    last_line = max([ln for ln in lines if ln > state.consumed_lines] + [b.line for b in read.bad] + [state.consumed_lines])
    record["memories"] = {"total": len(turns), "new": len(new_turns), "train": len(train_turns),
                          "heldout_total": len(heldout_turns), "corrupt_lines": bad, "quarantine": str(read.quarantine)}

    # ---- route (redact first; every turn trains LoRA; some are also stored verbatim)
    decisions, clean_train, to_store = [], [], []
    for tu, _ in new_turns:
        clean, dec = route(tu, cfg.router)
        held = is_heldout(tu.id, cfg.eval.heldout_fraction)
        decisions.append({**dec.to_json(), "heldout": held, "to_lora": dec.to_lora and not held})
        if dec.to_store:
            to_store.append(clean)
        if dec.to_lora and not held:  # to_lora is False only for a quarantined (poison) turn
            clean_train.append(clean)
    heldout_clean = [c for c, d in (route(tu, cfg.router) for tu in heldout_turns) if d.quarantine is None]
    if cfg.eval.max_heldout is not None:
        heldout_clean = heldout_clean[-cfg.eval.max_heldout :]
    heldout = [tu.example("heldout") for tu in heldout_clean]
    for d in decisions:
        append_jsonl(night_dir / "router.jsonl", d)
    record["router"] = {"turns": len(decisions), "to_store": sum(d["to_store"] for d in decisions),
                        "to_lora": sum(d["to_lora"] for d in decisions),
                        "reasons": dict(Counter(r.split("(")[0] for d in decisions for r in d["reasons"] if not r.startswith("lora("))),
                        "secrets_redacted": sum(len(d["secrets"]) for d in decisions)}
    timings["read_route"] = time.perf_counter() - t

    t = time.perf_counter()
    if store is None and (to_store or probes or cfg.router.enabled):
        store = open_hippocampus(home, cfg)
    if store is not None and to_store:
        store.add([c.id for c in to_store], [c.text() for c in to_store],
                  [{"night": n, "session": c.session, "ts": c.ts} for c in to_store])
    timings["store"] = time.perf_counter() - t

    # ---- nothing new to learn: log and stop
    if not clean_train:
        record.update({"status": "skipped", "reason": "no new memories to sleep on"})
        state.consumed_lines = last_line
        return _finish(home, state, record, night_dir, timings, t_start, say, store=store, probes=probes, to_store=to_store, cfg=cfg)

    # ---- load the current model
    t = time.perf_counter()
    base = resolve_base(home, state, cfg, model_dir)
    current = state.current_adapter
    if backend is None:
        backend = make_backend(cfg.backend, device=cfg.device, **({"threads": cfg.threads} if cfg.threads and cfg.backend == "torch" else {}))
    want = (str(base), str(home.resolve(current)) if current else None)
    if getattr(backend, "loaded", None) != want:  # a backend handed over from last night may hold it already
        backend.load(base, home.resolve(current) if current else None)
    heldout, bad_heldout = screen_examples(heldout, backend.tokenizer, getattr(backend, "eval_max_len", None))
    timings["load"] = time.perf_counter() - t
    record["base_model"], record["previous_adapter"] = str(base), current

    # ---- pre-evaluation
    t = time.perf_counter()
    key = _eval_key(base, current, cfg)
    pre = evaluate(backend, cfg, heldout=heldout, seed=seed, cached=state.eval_cache.get(key))
    write_json_atomic(night_dir / "eval_pre.json", pre)
    timings["pre_eval"] = time.perf_counter() - t
    say(f"night {n}: pre  held-out loss {_fmt(pre['heldout_loss'])}, harness {_fmt(pre['harness']['pass_rate'])}")

    # ---- dream (REM bursts) on the redacted memories
    t = time.perf_counter()
    dreams = dream(backend, clean_train, cfg.dreams, seed=seed)
    for row in dreams.raw:
        append_jsonl(night_dir / "dreams.jsonl", row)
    record["dreams"] = dreams.summary()
    timings["dream"] = time.perf_counter() - t

    # ---- train (memories + dreams + old-core replay), into a temporary adapter folder
    t = time.perf_counter()
    memories = [c.example("memory") for c in clean_train]
    replay = load_replay_set(cfg.replay_set) if cfg.replay_fraction > 0 else []
    batches = build_batches(memories, dreams.dreams, replay, iters=cfg.train.iters, batch_size=cfg.train.batch_size,
                            replay_fraction=cfg.replay_fraction, seed=seed, max_epochs=cfg.max_epochs,
                            tokenizer=backend.tokenizer, max_seq_len=cfg.train.max_seq_len)
    quarantined = [QuarantinedTurn(d["turn_id"], "route", d["quarantine"]) for d in decisions if d.get("quarantine")]
    quarantined += bad_heldout + batches.quarantined
    write_quarantine(night_dir / "quarantine.jsonl", quarantined)
    record["quarantined"] = [q.to_json() for q in quarantined]
    write_batches(night_dir / "train.jsonl", batches)
    record["mix"] = mix_summary(batches)
    tcfg = dataclasses.replace(cfg.train, seed=seed)
    if not cfg.continue_adapter and current:
        backend.load(base, None)
    tmp = home.adapters / f".tmp-night-{n:03d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    say(f"night {n}: training {len(batches)} steps on {record['mix']}")
    report = backend.train(batches, tcfg, tmp)
    if "after_train" in hooks:
        hooks["after_train"](report)
    record["train"] = report.to_json()
    timings["train"] = time.perf_counter() - t

    if report.aborted_nan:
        shutil.rmtree(tmp, ignore_errors=True)
        record.update({"status": "aborted_nan", "reason": f"non-finite loss at step {len(report.losses) - 1}; kept {current}",
                       "pre": _summary(pre), "adapter": current})
        say(f"night {n}: ABORTED (non-finite loss); keeping {current or 'the base model'}")
        return _finish(home, state, record, night_dir, timings, t_start, say, store=store, probes=probes, to_store=to_store,
                       cfg=cfg, decided=False)

    # ---- post-evaluation
    t = time.perf_counter()
    post = evaluate(backend, cfg, heldout=heldout, seed=seed)
    write_json_atomic(night_dir / "eval_post.json", post)
    timings["post_eval"] = time.perf_counter() - t
    say(f"night {n}: post held-out loss {_fmt(post['heldout_loss'])}, harness {_fmt(post['harness']['pass_rate'])}")

    # ---- morning: roll back or version (and maybe merge)
    t = time.perf_counter()
    reasons = _rollback_reasons(pre, post, cfg)
    accept = not reasons or not cfg.rollback.enabled
    meta = {"night": n, "backend": backend.name, "base_model": str(base), "continued_from": current,
            "train": tcfg.to_json(), "tag": tag}
    (tmp / "circadia_adapter.json").write_text(json.dumps(meta, indent=2) + "\n")
    if accept:
        final = home.adapter_dir(n)
        tmp.rename(final)
        state.current_adapter = str(final.relative_to(home.root))
        if hasattr(backend, "loaded"):
            backend.loaded = (str(base), str(final))  # what is in memory is exactly the saved adapter
        if cfg.merge:
            models = home.root / "models"
            mtmp = models / f".tmp-night-{n:03d}"
            shutil.rmtree(mtmp, ignore_errors=True)
            models.mkdir(parents=True, exist_ok=True)
            backend.merge(final, mtmp)
            if hasattr(backend, "loaded"):
                backend.loaded = None
            mtmp.rename(models / f"night-{n:03d}")
            state.base_model = f"models/night-{n:03d}"
            state.current_adapter = None
        state.eval_cache = {_eval_key(resolve_base(home, state, cfg, model_dir), state.current_adapter, cfg):
                            {"old_core_loss": post["old_core_loss"], "harness": post["harness"]}}
        status = "accepted"
    else:
        rejected = home.adapters / "rejected" / f"night-{n:03d}"
        rejected.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(rejected, ignore_errors=True)
        tmp.rename(rejected)
        state.eval_cache = {key: {"old_core_loss": pre["old_core_loss"], "harness": pre["harness"]}}
        status = "rolled_back"
    timings["morning"] = time.perf_counter() - t
    record.update({"status": status, "rollback_reasons": reasons, "would_roll_back": bool(reasons),
                   "adapter": state.current_adapter, "merged_base": state.base_model,
                   "pre": _summary(pre), "post": _summary(post)})
    say(f"night {n}: {status.upper()}" + (f" ({'; '.join(reasons)})" if reasons else "") + f" -> {state.current_adapter or state.base_model or 'base'}")
    state.consumed_lines = last_line
    return _finish(home, state, record, night_dir, timings, t_start, say, store=store, probes=probes, to_store=to_store, cfg=cfg)


def _rollback_reasons(pre: dict, post: dict, cfg: NightConfig) -> list[str]:
    reasons = []
    nan = float("nan")  # an unmeasured pass rate (no harness items) is null in state.json's cache
    drop = (pre["harness"]["pass_rate"] if pre["harness"]["pass_rate"] is not None else nan) - (
        post["harness"]["pass_rate"] if post["harness"]["pass_rate"] is not None else nan)
    if drop > cfg.rollback.max_capability_drop + 1e-9:
        reasons.append(f"capability dropped {drop:.3f} > {cfg.rollback.max_capability_drop}")
    lim = cfg.rollback.max_old_core_increase
    if lim is not None and pre["old_core_loss"] is not None and post["old_core_loss"] - pre["old_core_loss"] > lim:
        reasons.append(f"old-core loss rose {post['old_core_loss'] - pre['old_core_loss']:.3f} > {lim}")
    for k in ("heldout_loss", "old_core_loss"):
        if post.get(k) is not None and not math.isfinite(post[k]):
            reasons.append(f"post {k} is not finite")
    return reasons


def _summary(ev: dict) -> dict[str, Any]:
    h = ev.get("harness") or {}
    return {"heldout_loss": ev.get("heldout_loss"), "n_heldout": ev.get("n_heldout"), "old_core_loss": ev.get("old_core_loss"),
            "harness": h.get("pass_rate"), "harness_per_category": h.get("per_category"), "cached": ev.get("cached", False)}


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _finish(home, state, record, night_dir, timings, t_start, say, *, store, probes, to_store, cfg, decided=True):
    t = time.perf_counter()
    if store is not None:
        rec = {"probes": probe_recall(store, probes or [], cfg.eval.recall_k) if probes else {"recall": None, "n": 0},
               "stored_tonight": self_recall(store, [(c.id, c.user) for c in to_store], cfg.eval.recall_k),
               "store_size": store.count(), "store_kind": store.kind}
        record["recall"] = {k: ({kk: vv for kk, vv in v.items() if kk != "hits"} if isinstance(v, dict) else v) for k, v in rec.items()}
    timings["recall"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_start
    record["timings"] = timings
    state.attempts += 1
    if decided and record["status"] in ("accepted", "rolled_back"):
        state.nights += 1
    state.history.append({"night": record["night"], "status": record["status"], "adapter": state.current_adapter})
    write_json_atomic(night_dir / "night.json", record)
    append_jsonl(home.experiments, record, private=False)
    home.save_state(state)  # last: until here the previous night is what counts
    return record
