"""What every continual-learning method is to the :class:`~hal_sleep_wake.learner.Learner`.

A method (one file each in this package, registered by name as Mammoth's ``models/``) says what
trains and how one batch updates it; the learner owns the model, data, L1, optimizer, loop and tests.
Hooks, in order, for every task ``t``: :meth:`begin_task`, :meth:`observe` per batch (it must update
the model), :meth:`end_task`; the learner then applies L1's policy (compression) and tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from hal_sleep_wake.learner import Learner


class Method:
    name: ClassVar[str]
    uses_lora: ClassVar[bool] = False  # wake trains LoRA adapters only (the base is frozen)
    uses_memory: ClassVar[bool] = False  # an L1 buffer (filled with every wake batch)
    keeps_logits: ClassVar[bool] = False  # L1 also keeps the logits of each pushed sample (DER++)
    online: ClassVar[bool] = True  # False: observes no stream (joint training at the end)
    continual: ClassVar[bool] = True  # False: rows before the last are no learner's (BWT, forgetting undefined)

    def __init__(self, learner: Learner) -> None:
        self.learner = learner
        self.cfg = learner.cfg

    def begin_task(self, t: int) -> None:
        """Before the first batch of task ``t``."""

    def observe(self, x: torch.Tensor, y: torch.Tensor, tasks: torch.Tensor, t: int,
                idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One update on a batch (uint8 ``x``, slots ``y``, task ids ``tasks``, row indices ``idx`` into
        the task's training set) while learning task ``t``; return (detached loss, correct predictions)."""
        raise NotImplementedError

    def end_task(self, t: int) -> None:
        """After the last batch of task ``t`` (before L1's policy and the test)."""

    # ---- shared pieces ------------------------------------------------------------------------
    def supervised(self, x: torch.Tensor, y: torch.Tensor, tasks: torch.Tensor, t: int,
                   replay_n: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cross-entropy of a new batch plus ``replay_n`` samples from L1 (concatenated, one forward).

        Returns (loss, raw logits of the new batch, correct predictions on the new batch).
        """
        lr = self.learner
        xs, ys, ts = x, y, tasks
        if replay_n and lr.memory is not None and len(lr.memory):
            b = lr.memory.sample(replay_n)
            xs, ys, ts = torch.cat([x, b.x]), torch.cat([y, b.y]), torch.cat([tasks, b.task])
        raw = lr.forward(lr.model, lr.prepare(xs, train=True))
        logits = lr.masked(raw, lr.scenario.train_mask(ts, t))
        n = len(y)
        hits = (logits[:n].argmax(1) == y).sum()
        return F.cross_entropy(logits, ys), raw[:n], hits

    def buffered_ce(self, n: int, t: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Cross-entropy of ``n`` samples drawn from L1 (0 while L1 is empty)."""
        lr = self.learner
        b = lr.memory.sample(n, generator=generator)
        if len(b) == 0:
            return torch.zeros((), device=lr.dev)
        logits = lr.masked(lr.forward(lr.model, lr.prepare(b.x, train=True)), lr.scenario.train_mask(b.task, t))
        return F.cross_entropy(logits, b.y)
