"""What every head shares: the interface, minibatch training, evaluation and latency timing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn


class Head(nn.Module):
    """A classifier on top of (usually cached) backbone features.

    Subclasses implement ``logits(x)`` and ``train_step(x, y) -> loss tensor`` (one minibatch update);
    ``end_epoch()`` is a hook after every epoch; ``stats()`` returns head-specific counters
    (the circadian head's splits, prunes, ...), ``timings()`` its wall-clock times, ``events`` any
    per-event log (its sleeps).
    """

    name = "head"

    def __init__(self, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.in_dim = int(in_dim)
        self.num_classes = int(num_classes)
        self.events: list[dict[str, Any]] = []

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One minibatch update; returns the minibatch loss as a 0-d tensor (no device sync)."""
        raise NotImplementedError

    def end_epoch(self, epoch: int) -> None:
        pass

    def stats(self) -> dict[str, float]:
        """Head-specific counters (deterministic: the same seed gives the same values)."""
        return {}

    def timings(self) -> dict[str, float]:
        """Head-specific wall-clock times (never metrics: they differ from run to run)."""
        return {}

    def param_count(self) -> int:
        """Parameters of the head itself (a fine-tuned backbone is counted separately)."""
        return sum(p.numel() for name, p in self.named_parameters() if not name.startswith("backbone."))


def _init_uniform(shape: tuple[int, ...], fan_in: int, gen: torch.Generator) -> torch.Tensor:
    """nn.Linear's default init U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn from ``gen``."""
    bound = 1.0 / float(np.sqrt(fan_in))
    return (torch.rand(shape, generator=gen) * 2.0 - 1.0) * bound


def _init_normal(shape: tuple[int, ...], fan_in: int, scale: float, gen: torch.Generator) -> torch.Tensor:
    """N(0, (scale / sqrt(fan_in))^2), drawn from ``gen``."""
    return torch.randn(shape, generator=gen) * (scale / float(np.sqrt(fan_in)))


def one_hot(y: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return nn.functional.one_hot(y, num_classes).to(dtype)


@torch.no_grad()
def evaluate(
    head: Head,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 4096,
    featurize: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``head`` on ``(x, y)`` (``featurize`` as in :func:`fit`)."""
    head.eval()
    correct, loss, n = 0, 0.0, len(y)
    for i in range(0, n, batch_size):
        xb = x[i : i + batch_size]
        z = head.logits(featurize(xb) if featurize is not None else xb)
        yb = y[i : i + batch_size]
        correct += int((z.argmax(1) == yb).sum())
        loss += float(nn.functional.cross_entropy(z.float(), yb, reduction="sum"))
    head.train()
    return {"accuracy": correct / max(n, 1), "cross_entropy": loss / max(n, 1)}


def fit(
    head: Head,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    featurize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> dict[str, float]:
    """Minibatch training; returns train seconds and samples/s (head-training time only).

    ``x`` is cached features, or images when ``featurize`` (the backbone, re-run on every
    minibatch: the prototype's way) is given. Batch order comes from ``generator`` alone, so
    the cached and on-the-fly paths see the same batches.
    """
    n = len(y)
    seconds = 0.0
    sync = _synchronizer(y.device)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        losses = []
        sync()
        t0 = time.perf_counter()
        for idx in minibatches(order, batch_size):
            idx = idx.to(y.device)
            xb = x[idx]
            if featurize is not None:
                with torch.no_grad():
                    xb = featurize(xb)
            losses.append(head.train_step(xb, y[idx]))
        head.end_epoch(epoch)
        sync()
        seconds += time.perf_counter() - t0
        if on_epoch is not None:
            on_epoch(epoch, float(torch.stack(losses).float().mean()) if losses else float("nan"))
    return {"train_s": seconds, "train_sps": epochs * n / max(seconds, 1e-12)}


def minibatches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """``order`` cut into batches of ``batch_size``; a remainder under half a batch joins the last one.

    No tiny, noisy last step; and CPU kernels stay on their batched path (batches of a few rows
    take another code path whose results differ in the last bits), so training on cached features
    and re-running the backbone per minibatch agree bit for bit.
    """
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < batch_size // 2:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def _synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return torch.cuda.synchronize
    if device.type == "mps":
        return torch.mps.synchronize
    return lambda: None


@torch.no_grad()
def inference_latency(head: Head, x: torch.Tensor, *, batch_size: int = 256, repeats: int = 50, warmup: int = 5) -> dict[str, float]:
    """p50/p95 wall time (ms) of one forward pass of ``head`` on a batch of ``batch_size`` rows."""
    head.eval()
    xb = x[:batch_size]
    sync = _synchronizer(x.device)
    times = []
    for i in range(warmup + repeats):
        sync()
        t0 = time.perf_counter()
        head.logits(xb)
        sync()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    head.train()
    return {
        "infer_p50_ms": float(np.percentile(times, 50)),
        "infer_p95_ms": float(np.percentile(times, 95)),
        "infer_sps": len(xb) / (float(np.median(times)) / 1e3),
    }
