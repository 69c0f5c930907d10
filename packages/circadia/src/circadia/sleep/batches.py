"""The ONE batch builder both backends train from: memories + dreams + old-core replay, seeded.

:func:`build_batches` returns ``iters`` batches of ``batch_size`` :class:`Example` each. In every
prefix of the batch list the number of replay examples is ``round(k * replay_fraction)`` for the
``k`` examples so far (so the fraction holds exactly overall and nearly exactly per batch). New
examples (memories and dreams) and replay examples are each drawn by walking a seeded
permutation, reshuffled on every pass, so a log smaller than one batch is simply repeated, and
every new example is seen before any is seen twice.

Given the backend's ``tokenizer``, every example is tokenized once first (as training will):
one that raises, or whose reply has no token left within ``max_seq_len``, is left out and
reported in ``BatchList.quarantined`` (a poison turn never stops the night).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from circadia.backends.base import Example, tokenize_chat
from circadia.quarantine import QuarantinedTurn, error_line


class BatchList(list):
    """The night's batches (a plain ``list`` of batches) plus the examples left out of them.

    ``quarantined`` lists a :class:`~circadia.quarantine.QuarantinedTurn` (stage ``"tokenize"``)
    for every example that could not be tokenized or kept no reply token; empty when
    :func:`build_batches` was called without a tokenizer.
    """

    def __init__(self, batches=(), quarantined: list[QuarantinedTurn] | None = None):
        super().__init__(batches)
        self.quarantined: list[QuarantinedTurn] = list(quarantined or [])


def screen_examples(examples: Sequence[Example], tokenizer, max_seq_len: int | None) -> tuple[list[Example], list[QuarantinedTurn]]:
    """``(usable, quarantined)``: each example tokenized once (as training and scoring do); one that
    raises, or keeps no assistant token within ``max_seq_len``, is quarantined with the reason."""
    ok: list[Example] = []
    bad: list[QuarantinedTurn] = []
    for ex in examples:
        try:
            _, mask = tokenize_chat(tokenizer, ex.messages, max_seq_len)
            error = None if any(mask[1:]) else f"no reply token within max_seq_len={max_seq_len}"
        except Exception as err:
            error = error_line(err)
        if error is None:
            ok.append(ex)
        else:
            bad.append(QuarantinedTurn(turn=ex.meta.get("turn"), stage="tokenize", error=error, source=ex.source))
    return ok, bad


class _Cycler:
    """Endless seeded walk over ``items``: a fresh permutation on every pass."""

    def __init__(self, items: Sequence[Example], rng: np.random.Generator):
        self.items = list(items)
        self.rng = rng
        self.order: list[int] = []

    def take(self) -> Example:
        if not self.order:
            self.order = list(self.rng.permutation(len(self.items)))
        return self.items[self.order.pop(0)]


def replay_counts(iters: int, batch_size: int, replay_fraction: float) -> list[int]:
    """Replay examples per batch: cumulative count after k examples is round(k * fraction)."""
    if not 0.0 <= replay_fraction < 1.0:
        raise ValueError(f"replay_fraction must be in [0, 1), got {replay_fraction}")
    counts = []
    for b in range(iters):
        lo = math.floor(b * batch_size * replay_fraction + 0.5)
        hi = math.floor((b + 1) * batch_size * replay_fraction + 0.5)
        counts.append(hi - lo)
    return counts


def effective_iters(n_new: int, *, iters: int, batch_size: int, replay_fraction: float, max_epochs: float | None) -> int:
    """``iters`` capped so that new examples are seen at most ``max_epochs`` times (None: no cap)."""
    if max_epochs is None or n_new == 0:
        return iters
    new_per_batch = max(1e-9, batch_size * (1.0 - replay_fraction))
    return max(1, min(iters, math.ceil(max_epochs * n_new / new_per_batch)))


def build_batches(
    memories: Sequence[Example],
    dreams: Sequence[Example],
    replay_pool: Sequence[Example],
    *,
    iters: int,
    batch_size: int,
    replay_fraction: float,
    seed: int,
    max_epochs: float | None = None,
    tokenizer=None,
    max_seq_len: int | None = None,
) -> BatchList:
    """Ordered training batches for one night (identical for every backend and run with ``seed``).

    Empty when there is nothing new to learn (no memories and no dreams) or ``iters == 0``.
    With an empty ``replay_pool`` the replay fraction is 0. With a ``tokenizer``, examples that
    cannot be tokenized (or keep no reply token within ``max_seq_len``) are left out first and
    listed in the result's ``quarantined``.
    """
    quarantined: list[QuarantinedTurn] = []
    if tokenizer is not None:
        groups = []
        for group in (memories, dreams, replay_pool):
            kept, bad = screen_examples(group, tokenizer, max_seq_len)
            groups.append(kept)
            quarantined += bad
        memories, dreams, replay_pool = groups
    new = [*memories, *dreams]
    if not new or iters <= 0:
        return BatchList([], quarantined)
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    fraction = replay_fraction if replay_pool else 0.0
    iters = effective_iters(len(new), iters=iters, batch_size=batch_size, replay_fraction=fraction, max_epochs=max_epochs)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xC1AD1A]))
    new_stream = _Cycler(new, rng)
    replay_stream = _Cycler(replay_pool, rng) if replay_pool else None
    batches = []
    for n_replay in replay_counts(iters, batch_size, fraction):
        batch = [new_stream.take() for _ in range(batch_size - n_replay)]
        if replay_stream is not None:
            batch += [replay_stream.take() for _ in range(n_replay)]
        order = rng.permutation(len(batch))
        batches.append([batch[i] for i in order])
    return BatchList(batches, quarantined)


def mix_summary(batches: Sequence[Sequence[Example]]) -> dict[str, float]:
    """Counts per source and the realised replay fraction."""
    counts: dict[str, int] = {}
    for batch in batches:
        for ex in batch:
            counts[ex.source] = counts.get(ex.source, 0) + 1
    total = sum(counts.values())
    return {**{f"n_{k}": v for k, v in sorted(counts.items())}, "n_total": total,
            "replay_fraction": counts.get("replay", 0) / total if total else 0.0}


def write_batches(path: str | Path, batches: Sequence[Sequence[Example]]) -> Path:
    """The night's training file: one JSON line per example with its batch index (atomic write)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for b, batch in enumerate(batches):
            for ex in batch:
                fh.write(json.dumps({"batch": b, **ex.to_json()}, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


def read_batches(path: str | Path) -> list[list[Example]]:
    batches: dict[int, list[Example]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                batches.setdefault(int(obj["batch"]), []).append(Example.from_json(obj))
    return [batches[k] for k in sorted(batches)]
