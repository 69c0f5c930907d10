"""The night's evaluation: held-out loss, old-core loss and the capability harness of one model.

What is cached, and why it is exact:

- harness replies and old-core loss depend only on the model and the eval settings. They are
  kept in ``state.eval_cache`` under :func:`eval_key` (base, adapter, eval settings, backend, dtype)
  and reused while the model in use is unchanged (the next night's pre-evaluation, or every
  night's first one from the ``circadia_base_eval`` artifact);
- held-out loss is recomputed every night because new held-out chats arrive daily, but each
  chat's summed NLL (``Backend.nll_sums``) is computed once per model and cached per chat under
  the same key: the next night's pre-evaluation of the same model scores only the new chats. The
  loss is the sum of the per-chat NLL sums over the sum of their token counts: the same
  token-weighted mean as ``Backend.loss``. (Chats are scored packed, attention within each chat
  only; a chat's number can differ from scoring it alone in the last float bits, and a run is
  bit-for-bit repeatable.)

The held-out chats still to score and the old-core items go through the model together: few
forward passes (on a CPU each one streams every weight of the model).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circadia.backends.base import Backend, Example
from circadia.config import NightConfig
from circadia.data import harness_items, old_core
from circadia.evaluation import run_harness, select_harness
from circadia.sleep.record import EvalSummary


def eval_key(base: str | Path, adapter: str | None, cfg: NightConfig) -> str:
    """What identifies one model's evaluation: its base and adapter, the eval settings, the backend and dtype."""
    return json.dumps([str(base), adapter, cfg.eval.harness_per_category, cfg.eval.harness_max_tokens,
                       cfg.eval.old_core_items, cfg.backend, cfg.dtype])


def chat_digest(example: Example) -> str:
    """A stable name for one chat (the per-chat loss cache key)."""
    return hashlib.sha256(json.dumps(example.messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]


@dataclass
class HarnessResult:
    pass_rate: float | None  # None (NaN) when the harness has no items
    per_category: dict[str, float] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)  # id, category, pass, reply

    @classmethod
    def of(cls, obj: dict[str, Any]) -> HarnessResult:
        return cls(pass_rate=obj["pass_rate"], per_category=dict(obj.get("per_category") or {}), items=list(obj.get("items") or []))


@dataclass
class EvalResult:
    """One evaluation; :meth:`summary` is what the night record keeps, :meth:`cache_entry` what
    ``state.eval_cache`` keeps."""

    heldout_loss: float | None
    n_heldout: int
    old_core_loss: float | None
    harness: HarnessResult
    cached: bool = False
    heldout_sums: dict[str, list[float]] = field(default_factory=dict)  # chat digest -> [NLL sum, tokens]
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> EvalSummary:
        return EvalSummary(heldout_loss=self.heldout_loss, n_heldout=self.n_heldout, old_core_loss=self.old_core_loss,
                           harness=self.harness.pass_rate, harness_per_category=dict(self.harness.per_category),
                           cached=self.cached)

    def cache_entry(self) -> dict[str, Any]:
        return {"old_core_loss": self.old_core_loss,
                "harness": {"pass_rate": self.harness.pass_rate, "per_category": self.harness.per_category,
                            "items": self.harness.items},
                "heldout": dict(self.heldout_sums)}

    def to_json(self) -> dict[str, Any]:
        return {"heldout_loss": self.heldout_loss, "n_heldout": self.n_heldout, "old_core_loss": self.old_core_loss,
                "harness": self.cache_entry()["harness"], "cached": self.cached, "seconds": self.seconds}


def token_weighted(sums: Sequence[Sequence[float]]) -> float | None:
    """Mean NLL per token from (sum, tokens) pairs; None when no token was scored."""
    count = sum(int(n) for _, n in sums)
    return None if count == 0 else float(sum(float(s) for s, _ in sums)) / count


def heldout_sums(backend: Backend, chats: Sequence[Example], known: dict[str, list[float]] | None = None,
                 extra: Sequence[Example] = ()) -> tuple[dict[str, list[float]], list[tuple[float, int]]]:
    """``digest -> [NLL sum, tokens]`` for ``chats`` (taken from ``known`` where there, scored
    otherwise) and the (sum, tokens) of the ``extra`` examples, scored in the same passes."""
    known = known or {}
    digests = [chat_digest(ex) for ex in chats]
    todo: dict[str, Example] = {}
    for d, ex in zip(digests, chats):
        if d not in known:
            todo.setdefault(d, ex)
    scored = backend.nll_sums([*todo.values(), *extra]) if (todo or extra) else []
    fresh = dict(zip(todo, scored[: len(todo)]))
    sums = {d: list(known[d]) if d in known else [float(fresh[d][0]), int(fresh[d][1])] for d in digests}
    return sums, scored[len(todo):]


def old_core_items(cfg: NightConfig) -> list[Example]:
    items = old_core("eval")
    return items[: cfg.eval.old_core_items] if cfg.eval.old_core_items is not None else items


def harness_for(cfg: NightConfig) -> list[dict[str, Any]]:
    return select_harness(harness_items(), cfg.eval.harness_per_category)


def evaluate(backend: Backend, cfg: NightConfig, *, heldout: Sequence[Example], seed: int,
             cached: dict[str, Any] | None = None) -> EvalResult:
    """Evaluate the model in ``backend``. ``cached``: this model's ``state.eval_cache`` entry
    (harness, old-core loss, per-chat held-out sums), reused where present."""
    t0 = time.perf_counter()
    reuse = bool(cached and "harness" in cached)
    items = [] if reuse else old_core_items(cfg)
    sums, core_sums = heldout_sums(backend, heldout, (cached or {}).get("heldout"), extra=items)
    t1 = time.perf_counter()
    if reuse:
        core, harness = cached.get("old_core_loss"), HarnessResult.of(cached["harness"])
    else:
        core = token_weighted(core_sums) if items else None
        harness = HarnessResult.of(run_harness(backend, harness_for(cfg), max_tokens=cfg.eval.harness_max_tokens, seed=seed))
    loss = token_weighted([sums[chat_digest(ex)] for ex in heldout])  # a chat held out twice counts twice
    return EvalResult(heldout_loss=loss, n_heldout=len(heldout), old_core_loss=core, harness=harness, cached=reuse,
                      heldout_sums=sums, seconds={"losses": t1 - t0, "harness": time.perf_counter() - t1})
