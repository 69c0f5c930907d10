"""The phases of one night, in order (:data:`PHASES`); each reads and fills a :class:`NightContext`.

read_route -> store -> load -> pre_eval -> dream -> train -> post_eval -> morning. A phase may end
the night early (:meth:`NightContext.end`): ``store`` when nothing new is left to learn (skipped),
``train`` on a non-finite loss (aborted, nothing written). :mod:`circadia.sleep.night` runs them,
times them and commits the result.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from circadia.backends.base import make_backend
from circadia.config import NightConfig
from circadia.data import load_replay_set
from circadia.dreamer import dream
from circadia.evaluation import is_heldout, probe_recall, self_recall
from circadia.home import Home, State
from circadia.journal import Journal
from circadia.jsonl import append_jsonl
from circadia.quarantine import QuarantinedTurn
from circadia.router import route
from circadia.sleep.batches import build_batches, mix_summary, screen_examples, write_batches
from circadia.sleep.context import NightContext
from circadia.sleep.evaluate import eval_key, evaluate
from circadia.sleep.policy import decide
from circadia.sleep.record import (
    DreamSummary,
    MemoriesSummary,
    MixSummary,
    NightStatus,
    Recall,
    RecallSummary,
    RouterSummary,
    TrainSummary,
)
from circadian_core.record import write_json_atomic


def resolve_base(home: Home, state: State, cfg: NightConfig, model_dir: str | Path | None) -> Path:
    """The base model in use: a merged folder of the home, else ``model_dir``, else ``cfg.model``."""
    if state.base_model is not None:
        return home.root / state.base_model
    if model_dir is not None:
        return Path(model_dir)
    from circadia.models import resolve_model

    return resolve_model(cfg.model)


def open_hippocampus(home: Home, cfg: NightConfig, embedder=None):
    """The home's retrieval store (``cfg.store``: chroma, numpy, or auto)."""
    from circadia.hippocampus import chroma_available, make_embedder, open_store

    kind = cfg.store if cfg.store != "auto" else ("chroma" if chroma_available() else "numpy")
    return open_store(home.store_dir(kind), embedder or make_embedder(cfg.embedder), kind)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


# ----------------------------------------------------------------------------- phases


def read_and_route(ctx: NightContext) -> None:
    """New turns since the last night; the held-out split; redaction and routing of every new turn."""
    cfg, state = ctx.cfg, ctx.state
    frac = cfg.eval.heldout_fraction
    turns, lines, read = Journal(ctx.home.memories).read()
    bad = [b.message() for b in read.bad]
    if bad:
        ctx.say(f"{len(bad)} corrupt line(s) in {ctx.home.memories} quarantined to {read.quarantine}")
    heldout_turns = [tu for tu in turns if is_heldout(tu.id, frac)]
    new_turns = [tu for tu, ln in zip(turns, lines) if ln > state.consumed_lines]
    # the last line this read saw (valid or quarantined): turns a chat appends while we sleep wait for tomorrow
    ctx.last_line = max([ln for ln in lines if ln > state.consumed_lines] + [b.line for b in read.bad] + [state.consumed_lines])
    rows, reasons, secrets = [], Counter(), 0
    for tu in new_turns:
        clean, dec = route(tu, cfg.router)
        held = is_heldout(tu.id, frac)
        rows.append({**dec.to_json(), "heldout": held, "to_lora": dec.to_lora and not held})
        reasons.update(r.split("(")[0] for r in dec.reasons if not r.startswith("lora("))
        if dec.quarantine is not None:  # a poison turn: left out of everything, the night goes on
            ctx.quarantined.append(QuarantinedTurn(tu.id, "route", dec.quarantine))
        if dec.to_store:
            ctx.to_store.append(clean)
        if dec.to_lora and not held:  # to_lora is False only for a quarantined turn
            ctx.train_turns.append(clean)
        secrets += len(dec.secrets)
    heldout_clean = [c for c, d in (route(tu, cfg.router) for tu in heldout_turns) if d.quarantine is None]
    if cfg.eval.max_heldout is not None:
        heldout_clean = heldout_clean[-cfg.eval.max_heldout :]
    ctx.heldout = [tu.example("heldout") for tu in heldout_clean]
    if rows:
        append_jsonl(ctx.night_dir / "router.jsonl", rows)
    ctx.record.memories = MemoriesSummary(total=len(turns), new=len(new_turns), train=len(ctx.train_turns),
                                          heldout_total=len(heldout_turns), corrupt_lines=bad, quarantine=str(read.quarantine))
    ctx.record.router = RouterSummary(turns=len(rows), to_store=len(ctx.to_store), to_lora=len(ctx.train_turns),
                                      reasons=dict(reasons), secrets_redacted=secrets,
                                      quarantined=sum(q.stage == "route" for q in ctx.quarantined))


def store_turns(ctx: NightContext) -> None:
    """Routed turns into the hippocampus; with nothing new to learn the night ends here (skipped)."""
    cfg = ctx.cfg
    if ctx.store is None and (ctx.to_store or ctx.probes or cfg.router.enabled):
        ctx.store = open_hippocampus(ctx.home, cfg)
    if ctx.store is not None and ctx.to_store:
        ctx.store.add([c.id for c in ctx.to_store], [c.text() for c in ctx.to_store],
                      [{"night": ctx.n, "session": c.session, "ts": c.ts} for c in ctx.to_store])
    if not ctx.train_turns:
        ctx.state.consumed_lines = ctx.last_line
        ctx.end(NightStatus.SKIPPED, "no new memories to sleep on")


def load_model(ctx: NightContext) -> None:
    """The model in use (base + current adapter); a backend that already holds it is kept as is."""
    ctx.base = resolve_base(ctx.home, ctx.state, ctx.cfg, ctx.model_dir)
    current = ctx.state.current_adapter
    if ctx.backend is None:
        ctx.backend = make_backend(ctx.cfg.backend, device=ctx.cfg.device, dtype=ctx.cfg.dtype)
    adapter = ctx.home.resolve(current)
    if ctx.backend.loaded != (str(ctx.base), str(adapter) if adapter else None):
        ctx.backend.load(ctx.base, adapter)
    # a held-out chat the tokenizer cannot handle (or with no reply token left) is quarantined, not fatal
    ctx.heldout, bad = screen_examples(ctx.heldout, ctx.backend.tokenizer, ctx.backend.eval_max_len)
    ctx.quarantined += bad
    ctx.record.base_model, ctx.record.previous_adapter = str(ctx.base), current


def pre_evaluate(ctx: NightContext) -> None:
    """Evaluate the model in use (harness and old-core loss from the cache when it is unchanged)."""
    ctx.key = eval_key(ctx.base, ctx.state.current_adapter, ctx.cfg)
    ctx.pre = evaluate(ctx.backend, ctx.cfg, heldout=ctx.heldout, seed=ctx.seed, cached=ctx.state.eval_cache.get(ctx.key))
    write_json_atomic(ctx.night_dir / "eval_pre.json", ctx.pre.to_json())
    ctx.record.pre = ctx.pre.summary()
    ctx.say(f"night {ctx.n}: pre  held-out loss {_fmt(ctx.pre.heldout_loss)}, harness {_fmt(ctx.pre.harness.pass_rate)}"
            + (" (harness cached)" if ctx.pre.cached else ""))


def dream_phase(ctx: NightContext) -> None:
    """REM bursts on the redacted memories; invalid dreams dropped and counted."""
    ctx.dreams = dream(ctx.backend, ctx.train_turns, ctx.cfg.dreams, seed=ctx.seed)
    if ctx.dreams.raw:
        append_jsonl(ctx.night_dir / "dreams.jsonl", ctx.dreams.raw)
    s = ctx.dreams.summary()
    ctx.record.dreams = DreamSummary(attempts=s["attempts"], valid=s["valid"], invalid=s["invalid"],
                                     invalid_by_reason=dict(s["invalid_by_reason"]))
    if s["attempts"]:
        ctx.say(f"night {ctx.n}: dreams {s['valid']}/{s['attempts']} valid")


def train_phase(ctx: NightContext) -> None:
    """LoRA on memories + dreams + old-core replay into a temporary adapter folder; a non-finite
    loss aborts the night (nothing written, the memories wait for the next night)."""
    cfg, n = ctx.cfg, ctx.n
    memories = [c.example("memory") for c in ctx.train_turns]
    replay = load_replay_set(cfg.replay_set) if cfg.replay_fraction > 0 else []
    batches = build_batches(memories, ctx.dreams.dreams if ctx.dreams else [], replay, iters=cfg.train.iters,
                            batch_size=cfg.train.batch_size, replay_fraction=cfg.replay_fraction, seed=ctx.seed,
                            max_epochs=cfg.max_epochs, tokenizer=ctx.backend.tokenizer, max_seq_len=cfg.train.max_seq_len)
    ctx.quarantined += batches.quarantined
    write_batches(ctx.night_dir / "train.jsonl", batches)
    ctx.record.mix = MixSummary.of(mix_summary(batches))
    ctx.tcfg = dataclasses.replace(cfg.train, seed=ctx.seed)
    if not cfg.continue_adapter and ctx.state.current_adapter:
        ctx.backend.load(ctx.base, None)
    ctx.tmp = ctx.home.adapters / f".tmp-night-{n:03d}"
    shutil.rmtree(ctx.tmp, ignore_errors=True)
    ctx.tmp.parent.mkdir(parents=True, exist_ok=True)
    m = ctx.record.mix
    ctx.say(f"night {n}: training {len(batches)} steps on {m.n_memory} memories, {m.n_dream} dreams, {m.n_replay} replay")
    ctx.report = ctx.backend.train(batches, ctx.tcfg, ctx.tmp, on_step=_step_logger(ctx))
    ctx.hook("after_train", ctx.report)
    ctx.record.train = TrainSummary.of(ctx.report)
    if ctx.report.aborted_nan:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
        current = ctx.state.current_adapter
        ctx.record.adapter = current
        ctx.state.eval_cache = {ctx.key: ctx.pre.cache_entry()}  # the files in use are unchanged
        ctx.end(NightStatus.ABORTED_NAN, f"non-finite loss at step {len(ctx.report.losses) - 1}; kept {current}")
        ctx.say(f"night {n}: ABORTED (non-finite loss); keeping {current or 'the base model'}")


def _step_logger(ctx: NightContext) -> Callable[[int, int, float, float], None]:
    def on_step(step: int, total: int, loss: float, lr: float) -> None:
        ctx.say(f"night {ctx.n}: step {step + 1}/{total} loss {loss:.4f} lr {lr:.2e}")

    return on_step


def post_evaluate(ctx: NightContext) -> None:
    """Evaluate the newly trained model (nothing cached: it is new)."""
    ctx.post = evaluate(ctx.backend, ctx.cfg, heldout=ctx.heldout, seed=ctx.seed)
    write_json_atomic(ctx.night_dir / "eval_post.json", ctx.post.to_json())
    ctx.record.post = ctx.post.summary()
    ctx.say(f"night {ctx.n}: post held-out loss {_fmt(ctx.post.heldout_loss)}, harness {_fmt(ctx.post.harness.pass_rate)}")


def morning(ctx: NightContext) -> None:
    """Roll back (the adapter goes to adapters/rejected/) or version it (and maybe merge it)."""
    cfg, state, home, n, rec = ctx.cfg, ctx.state, ctx.home, ctx.n, ctx.record
    verdict = decide(ctx.pre, ctx.post, rec.train, cfg.rollback)
    accept = verdict.accept(cfg.rollback.enabled)
    meta = {"night": n, "backend": ctx.backend.name, "base_model": str(ctx.base), "continued_from": state.current_adapter,
            "train": ctx.tcfg.to_json(), "tag": rec.tag}
    (ctx.tmp / "circadia_adapter.json").write_text(json.dumps(meta, indent=2) + "\n")
    if accept:
        final = home.adapter_dir(n)
        ctx.tmp.rename(final)
        state.current_adapter = str(final.relative_to(home.root))
        ctx.backend.loaded = (str(ctx.base), str(final))  # what is in memory is exactly the saved adapter
        if cfg.merge:
            _merge(ctx, final)
        state.eval_cache = {eval_key(resolve_base(home, state, cfg, ctx.model_dir), state.current_adapter, cfg):
                            ctx.post.cache_entry()}
        rec.status = NightStatus.ACCEPTED
    else:
        rejected = home.adapters / "rejected" / f"night-{n:03d}"
        rejected.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(rejected, ignore_errors=True)
        ctx.tmp.rename(rejected)
        state.eval_cache = {ctx.key: ctx.pre.cache_entry()}
        rec.status = NightStatus.ROLLED_BACK
    rec.rollback_reasons, rec.would_roll_back = verdict.all_reasons, verdict.would_roll_back
    rec.adapter, rec.merged_base = state.current_adapter, state.base_model
    state.consumed_lines = ctx.last_line
    reasons = f" ({'; '.join(verdict.all_reasons)})" if verdict.all_reasons else ""
    ctx.say(f"night {n}: {rec.status.value.upper()}{reasons} -> {state.current_adapter or state.base_model or 'base'}")


def _merge(ctx: NightContext, final: Path) -> None:
    models = ctx.home.root / "models"
    mtmp = models / f".tmp-night-{ctx.n:03d}"
    shutil.rmtree(mtmp, ignore_errors=True)
    models.mkdir(parents=True, exist_ok=True)
    ctx.backend.merge(final, mtmp)
    mtmp.rename(models / f"night-{ctx.n:03d}")
    ctx.state.base_model = f"models/night-{ctx.n:03d}"
    ctx.state.current_adapter = None


def recall(ctx: NightContext) -> None:
    """Retrieval recall of the store after the night (fact probes and tonight's stored turns)."""
    if ctx.store is None:
        return
    k = ctx.cfg.eval.recall_k
    probes = probe_recall(ctx.store, ctx.probes or [], k) if ctx.probes else {"recall": None, "n": 0}
    stored = self_recall(ctx.store, [(c.id, c.user) for c in ctx.to_store], k)
    ctx.record.recall = RecallSummary(probes=Recall(probes["recall"], probes["n"]), stored_tonight=Recall(stored["recall"], stored["n"]),
                                      store_size=ctx.store.count(), store_kind=ctx.store.kind)


PHASES: tuple[tuple[str, Callable[[NightContext], None]], ...] = (
    ("read_route", read_and_route),
    ("store", store_turns),
    ("load", load_model),
    ("pre_eval", pre_evaluate),
    ("dream", dream_phase),
    ("train", train_phase),
    ("post_eval", post_evaluate),
    ("morning", morning),
)
"""The night's phases in order; the names are the fields of :class:`~circadia.sleep.record.PhaseTimings`."""
