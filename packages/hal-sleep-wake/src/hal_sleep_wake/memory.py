"""L1: a fixed-capacity task-batch ring buffer on the device, with reservoir or FIFO replacement.

Every wake batch is pushed whole (uint8 images, labels, task ids, optionally the logits DER++ keeps)
with tensor operations only, and without a host synchronization:

* ``fifo``: a ring; once full, each new sample overwrites the oldest one;
* ``reservoir``: once full, the ``n``-th sample of the stream (0-based) replaces slot ``j ~ U{0..n}``
  when ``j < capacity`` (Vitter's algorithm R), so the buffer stays a uniform sample of the stream.
  Within one pushed batch, a later sample drawn for the same slot wins, exactly as pushing one by one.

While not full, new samples are appended under both policies. :meth:`sample` draws without
replacement, as Mammoth's buffer does. :meth:`compress` (entropy-aware compression, the buffer
policy every replaying method shares at the end of a task) keeps a fraction of the capacity, **an
equal share per class** filled with that class's most important samples, compacts them in
insertion order and frees the rest for the next task.
"""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass
class Sample:
    """Buffered samples drawn together; ``logits`` only when the buffer keeps them."""

    x: torch.Tensor
    y: torch.Tensor
    task: torch.Tensor
    logits: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])


class RingBuffer:
    def __init__(
        self,
        capacity: int,
        item_shape: tuple[int, ...],
        *,
        policy: str = "reservoir",
        device: str | torch.device = "cpu",
        generator: torch.Generator | None = None,
        logit_dim: int | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if policy not in ("reservoir", "fifo"):
            raise ValueError(f"policy must be 'reservoir' or 'fifo', got {policy!r}")
        self.capacity = int(capacity)
        self.policy = policy
        self.device = torch.device(device)
        self.generator = generator
        self.x = torch.zeros((capacity, *item_shape), dtype=torch.uint8, device=self.device)
        self.y = torch.zeros(capacity, dtype=torch.long, device=self.device)
        self.task = torch.zeros(capacity, dtype=torch.long, device=self.device)
        self.stamp = torch.full((capacity,), -1, dtype=torch.long, device=self.device)  # stream index
        self.logits = (torch.zeros(capacity, logit_dim, device=self.device) if logit_dim else None)
        self.size = 0  # filled slots (always the prefix [0, size))
        self.seen = 0  # samples pushed so far
        self.ptr = 0  # fifo: next slot to write

    def __len__(self) -> int:
        return self.size

    @property
    def fill(self) -> float:
        return self.size / self.capacity

    def _columns(self) -> list[torch.Tensor]:
        return [self.x, self.y, self.task, self.stamp] + ([self.logits] if self.logits is not None else [])

    @torch.no_grad()
    def push(self, x: torch.Tensor, y: torch.Tensor, task: torch.Tensor | int,
             logits: torch.Tensor | None = None) -> None:
        """Add a batch (``x`` uint8 of the item shape, ``y`` labels, ``task`` ids or one id, ``logits``)."""
        b = int(y.shape[0])
        if b == 0:
            return
        if (logits is None) != (self.logits is None):
            raise ValueError("this buffer keeps logits: push them" if logits is None
                             else "this buffer keeps no logits (construct it with logit_dim)")
        dev = self.device
        task = torch.as_tensor(task, dtype=torch.long, device=dev).expand(b)
        stamps = torch.arange(self.seen, self.seen + b, device=dev)
        src = [x.to(dev), y.to(dev), task, stamps] + ([logits.detach().float()] if logits is not None else [])
        n_free = min(self.capacity - self.size, b)
        if n_free:  # append
            for col, s in zip(self._columns(), src):
                col[self.size : self.size + n_free] = s[:n_free]
            self.size += n_free
            self.ptr = self.size % self.capacity
        rest = b - n_free
        if rest and self.policy == "fifo":
            slots = (self.ptr + torch.arange(rest, device=dev)) % self.capacity
            self.ptr = (self.ptr + rest) % self.capacity
            rows = torch.arange(n_free, b, device=dev)
            slots, rows = slots[-self.capacity :], rows[-self.capacity :]  # more than capacity: the last win
            for col, s in zip(self._columns(), src):
                col[slots] = s[rows]
        elif rest:
            rows = torch.arange(n_free, b, device=dev)
            n = stamps[rows].double() + 1.0  # samples in the stream when this one arrives
            u = torch.rand(rest, generator=self.generator, device=dev, dtype=torch.float64)
            j = torch.floor(u * n).long().clamp(max=self.capacity)  # capacity = "not kept" (a spare slot)
            # the last row drawn for a slot wins; no boolean indexing, so no host synchronization
            winner = torch.full((self.capacity + 1,), -1, dtype=torch.long, device=dev)
            winner = winner.scatter_reduce(0, j, rows, reduce="amax", include_self=True)[: self.capacity]
            take = winner >= 0
            pick = winner.clamp(min=0)
            for col, s in zip(self._columns(), src):
                keep = take.view(-1, *([1] * (col.dim() - 1)))
                col.copy_(torch.where(keep, s[pick], col))
        self.seen += b

    def sample(self, n: int, generator: torch.Generator | None = None) -> Sample:
        """``min(n, size)`` buffered samples drawn uniformly without replacement (empty buffer: none).

        ``generator`` (default: the buffer's) lets a caller draw from its own random stream.
        """
        if self.size == 0 or n <= 0:
            idx = torch.zeros(0, dtype=torch.long, device=self.device)
        else:
            g = generator if generator is not None else self.generator
            idx = torch.randperm(self.size, generator=g, device=self.device)[:n]
        return self.take(idx)

    def take(self, idx: torch.Tensor) -> Sample:
        return Sample(self.x[idx], self.y[idx], self.task[idx], self.logits[idx] if self.logits is not None else None)

    def contents(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = self.size
        return self.x[:s], self.y[:s], self.task[:s]

    def class_counts(self) -> dict[int, int]:
        """{label: buffered samples} (a host read: for records and tests, not the training loop)."""
        labels, counts = torch.unique(self.y[: self.size], return_counts=True)
        return dict(zip(labels.tolist(), counts.tolist()))

    @torch.no_grad()
    def compress(self, importance: torch.Tensor, keep: float) -> int:
        """Keep ``keep * capacity`` samples, shared equally among the buffered classes (a class with fewer
        keeps all of its own), the most important of each class first; return how many were dropped.

        ``importance`` holds one score per filled slot (higher = keep). Kept samples are compacted to
        the front in insertion order, so FIFO still overwrites the oldest next.
        """
        s = self.size
        if importance.shape != (s,):
            raise ValueError(f"importance must have one score per buffered sample ({s}), got {tuple(importance.shape)}")
        target = max(1, int(keep * self.capacity))
        if s <= target:
            return 0
        labels = self.y[:s]
        present, counts = torch.unique(labels, return_counts=True)
        quota: dict[int, int] = {}
        remaining = target
        pending = sorted(zip(counts.tolist(), present.tolist()))  # smallest first: water-filling
        for i, (n_c, c) in enumerate(pending):  # a few dozen classes, not samples
            quota[c] = min(n_c, remaining // (len(pending) - i))
            remaining -= quota[c]
        kept = []
        for c, k in quota.items():
            idx = torch.nonzero(labels == c).flatten()
            kept.append(idx[torch.topk(importance[idx].float(), k, sorted=False).indices])
        idx = torch.cat(kept)
        idx = idx[torch.argsort(self.stamp[idx])]  # insertion order
        k = len(idx)
        for col in self._columns():
            col[:k] = col[idx].clone()
        self.stamp[k:] = -1
        self.size = k
        self.ptr = k % self.capacity
        return s - k
