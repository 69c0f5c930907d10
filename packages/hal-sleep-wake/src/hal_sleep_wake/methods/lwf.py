"""Learning without Forgetting (Li and Hoiem 2017), as Mammoth's ``lwf`` runs it.

Before task ``t > 0``: the new task's head is warmed up on frozen features (SGD at the wake learning
rate, ``warmup_epochs`` passes, loss over the new task's classes only), then the network - the
teacher - labels every training image of the task, unaugmented, once. While learning: cross-entropy
over the classes seen so far, plus ``alpha`` times the cross-entropy between the teacher's and the
network's predictions at temperature ``T`` over the old classes (Mammoth's ``smooth`` of a softmax is
a softmax of the logits divided by ``T``). With per-task heads the old classes are every old head's,
in one softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hal_sleep_wake.methods import register
from hal_sleep_wake.methods.base import Method


@register
class LwF(Method):
    name = "lwf"

    def __init__(self, learner) -> None:
        super().__init__(learner)
        self.old_logits: torch.Tensor | None = None

    def begin_task(self, t: int) -> None:
        self.old_logits = None
        if t == 0:
            return
        lr = self.learner
        x, y = lr.seq.x_train[t], lr.seq.y_train[t]
        self._warm_up_head(x, y, t)
        lr.model.eval()
        with torch.no_grad():
            self.old_logits = torch.cat([lr.forward(lr.model, lr.prepare(x[s : s + lr.cfg.eval_batch], train=False))
                                         for s in range(0, len(y), lr.cfg.eval_batch)])
        lr.model.train()

    def _warm_up_head(self, x: torch.Tensor, y: torch.Tensor, t: int) -> None:
        lr, w = self.learner, self.cfg.wake
        epochs = self.cfg.lwf.warmup_epochs if self.cfg.lwf.warmup_epochs is not None else w.epochs
        head = list(lr.model.fc.parameters())
        opt = torch.optim.SGD(head, lr=w.lr)
        mask = lr.scenario.task_mask[t]
        bs = min(w.batch_size, len(y))
        lr.model.eval()  # frozen features: norm statistics do not move either
        for _ in range(epochs):
            perm = torch.randperm(len(y), generator=lr.gen, device=lr.dev)
            for i in range(len(y) // bs):
                b = perm[i * bs : (i + 1) * bs]
                with torch.no_grad(), lr.autocast():
                    feats = lr.model.features(lr.prepare(x[b], train=True))
                logits = lr.masked(lr.model.fc(feats.float()).float(), mask.expand(len(b), -1))
                loss = F.cross_entropy(logits, y[b])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        lr.model.train()

    def observe(self, x: torch.Tensor, y: torch.Tensor, tasks: torch.Tensor, t: int,
                idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lr, cfg = self.learner, self.cfg.lwf
        raw = lr.forward(lr.model, lr.prepare(x, train=True))
        logits = lr.masked(raw, lr.scenario.known_mask(tasks, t))
        loss = F.cross_entropy(logits, y)
        if self.old_logits is not None:
            old = lr.scenario.seen_mask[t - 1].expand(len(y), -1)
            temp = cfg.temperature
            target = F.softmax(lr.masked(self.old_logits[idx], old) / temp, dim=1)
            log_p = F.log_softmax(lr.masked(raw, old) / temp, dim=1)
            loss = loss + cfg.alpha * -(torch.where(old, target * log_p, torch.zeros_like(log_p))).sum(1).mean()
        lr.update(loss)
        return loss.detach(), (logits.argmax(1) == y).sum()
