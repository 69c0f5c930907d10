"""Sleep: the pieces of REM (dreams, distillation) and of L1's entropy-aware compression.

REM, as implemented here (the seed prototype had none):

1. *Dreams* are synthesized from L1. ``mixup``: a buffered sample is blended with another buffered
   sample *of the same task*, ``lambda ~ U(0, 1)``, in normalized input space (both augmented first);
   the dream's class is the one with the larger weight. ``excite``: the dream (a mixup, or an augmented
   buffered sample alone) takes a few signed-gradient steps that raise its teacher's logit of that
   class, i.e. an input optimized to excite the class (clamped to the valid pixel range).
2. *Targets*: a dream from an **old** task (any task before the one being learned) is labelled by
   the *snapshot* - the model as it was at the end of the previous sleep - over the classes that
   snapshot was trained on (class-incremental: the classes of the old tasks only); a dream from the
   current task by the *awake* model, frozen just before NREM. Both are softened at the dream
   temperature ``T``.
3. The merged model's fresh LoRA adapter is trained, with REM's own optimizer, on
   ``T^2 KL(teacher_T || student_T)`` plus ``ce_weight`` times the cross-entropy of real buffered
   samples (norm layers frozen), then merged exactly (``s = 1``) and reset. Dreams are drawn from
   REM's own random generator, so a run with REM draws the same wake batches as one without.

So REM pulls old tasks back towards what the model knew before this wake, and repairs whatever the
merge changed about the current task (nothing when ``s = 1``; half the update when ``s = 0.5``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * mean_b KL(softmax(teacher/T) || softmax(student/T))`` over the logits in ``mask`` only.

    Both logit tensors already hold -inf outside ``mask``.
    """
    t = float(temperature)
    log_s = F.log_softmax(student / t, dim=1)
    log_t = F.log_softmax(teacher / t, dim=1)
    kl = torch.where(mask, log_t.exp() * (log_t - log_s), torch.zeros_like(log_s))
    return kl.sum(1).mean() * (t * t)


def same_task_partners(task: torch.Tensor, idx: torch.Tensor, n_tasks: int, generator: torch.Generator | None) -> torch.Tensor:
    """For each buffered index in ``idx``, a uniformly drawn buffered index of the same task."""
    order = torch.argsort(task, stable=True)
    counts = (task[:, None] == torch.arange(n_tasks, device=task.device)).sum(0)  # bincount warns on CUDA
    starts = torch.cumsum(counts, 0) - counts
    ti = task[idx]
    u = torch.rand(len(idx), generator=generator, device=task.device)
    offset = torch.minimum((u * counts[ti]).long(), counts[ti] - 1)
    return order[starts[ti] + offset]


def make_dreams(
    x: torch.Tensor,
    y: torch.Tensor,
    task: torch.Tensor,
    n: int,
    *,
    mode: str,
    n_tasks: int,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    generator: torch.Generator | None,
    teacher: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    excite_steps: int = 0,
    excite_lr: float = 0.1,
    pixel_range: tuple[torch.Tensor | float, torch.Tensor | float] = (float("-inf"), float("inf")),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` dreams from the buffered ``(x, y, task)``: (inputs, task ids, classes).

    ``prepare`` turns uint8 images into augmented network inputs. ``teacher(inputs, task_ids)`` gives
    the masked teacher logits that ``excite`` ascends; excited inputs are clamped to ``pixel_range``
    (the normalized values of black and white, per channel).
    """
    dev = x.device
    i = torch.randint(0, len(y), (n,), generator=generator, device=dev)
    inputs = prepare(x[i])
    label = y[i]
    if "mixup" in mode:
        j = same_task_partners(task, i, n_tasks, generator)
        lam = torch.rand(n, generator=generator, device=dev)
        inputs = lam[:, None, None, None] * inputs + (1.0 - lam[:, None, None, None]) * prepare(x[j])
        label = torch.where(lam >= 0.5, y[i], y[j])
    if "excite" in mode and excite_steps > 0:
        if teacher is None:
            raise ValueError("excite dreams need a teacher")
        inputs = inputs.detach()
        rows = torch.arange(n, device=dev)
        for _ in range(excite_steps):
            inputs.requires_grad_(True)
            with torch.enable_grad():
                objective = teacher(inputs, task[i])[rows, label].sum()
                (g,) = torch.autograd.grad(objective, inputs)
            low, high = pixel_range
            inputs = torch.clamp(inputs.detach() + excite_lr * g.sign(), low, high)
    return inputs.detach(), task[i], label


def importance_scores(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-sample importance from masked logits: ``loss`` (cross-entropy), ``entropy`` of the prediction,
    or ``grad_norm``, the norm of the loss gradient w.r.t. the logits, ``||softmax(z) - onehot(y)||``."""
    log_p = F.log_softmax(logits.float(), dim=1)
    if kind == "loss":
        return -log_p.gather(1, y[:, None]).squeeze(1)
    p = log_p.exp()
    if kind == "entropy":
        return -torch.where(p > 0, p * log_p, torch.zeros_like(p)).sum(1)
    if kind == "grad_norm":
        return (p - F.one_hot(y, p.shape[1]).to(p.dtype)).norm(dim=1)
    raise ValueError(f"unknown importance {kind!r}; use loss, entropy or grad_norm")
