"""L1: a fixed-capacity task-batch ring buffer on the device, with reservoir or FIFO replacement.

Every wake batch is pushed whole (uint8 images, labels, task ids) with tensor operations only:

* ``fifo``: a ring; once full, each new sample overwrites the oldest one;
* ``reservoir``: once full, the ``n``-th sample of the stream (0-based) replaces slot ``j ~ U{0..n}``
  when ``j < capacity`` (Vitter's algorithm R), so the buffer stays a uniform sample of the stream.
  Within one pushed batch, a later sample drawn for the same slot wins, exactly as pushing one by one.

While not full, new samples are appended under both policies. :meth:`compress` (entropy-aware
compression, run during sleep) keeps a fraction of the capacity, an equal share per task filled with
that task's most important samples, compacts them in insertion order and frees the rest for the next
wake.
"""

from __future__ import annotations

import torch


class RingBuffer:
    def __init__(
        self,
        capacity: int,
        item_shape: tuple[int, ...],
        *,
        policy: str = "reservoir",
        device: str | torch.device = "cpu",
        generator: torch.Generator | None = None,
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
        self.size = 0  # filled slots (always the prefix [0, size))
        self.seen = 0  # samples pushed so far
        self.ptr = 0  # fifo: next slot to write

    def __len__(self) -> int:
        return self.size

    @property
    def fill(self) -> float:
        return self.size / self.capacity

    def _write(self, slots: torch.Tensor, src: torch.Tensor, x, y, task, stamps) -> None:
        self.x[slots] = x[src]
        self.y[slots] = y[src]
        self.task[slots] = task[src]
        self.stamp[slots] = stamps[src]

    @torch.no_grad()
    def push(self, x: torch.Tensor, y: torch.Tensor, task: torch.Tensor | int) -> None:
        """Add a batch (``x`` uint8 of the item shape, ``y`` labels, ``task`` ids or one id)."""
        b = int(y.shape[0])
        if b == 0:
            return
        dev = self.device
        x, y = x.to(dev), y.to(dev)
        task = torch.as_tensor(task, dtype=torch.long, device=dev).expand(b)
        stamps = torch.arange(self.seen, self.seen + b, device=dev)
        src = torch.arange(b, device=dev)
        n_free = min(self.capacity - self.size, b)
        if n_free:  # append
            slots = torch.arange(self.size, self.size + n_free, device=dev)
            self._write(slots, src[:n_free], x, y, task, stamps)
            self.size += n_free
            self.ptr = self.size % self.capacity
        rest = src[n_free:]
        if len(rest):
            if self.policy == "fifo":
                slots = (self.ptr + torch.arange(len(rest), device=dev)) % self.capacity
                self.ptr = (self.ptr + len(rest)) % self.capacity
                slots, rest = slots[-self.capacity :], rest[-self.capacity :]  # more than capacity: the last win
            else:
                n = stamps[rest].double() + 1.0  # samples in the stream when this one arrives
                u = torch.rand(len(rest), generator=self.generator, device=dev, dtype=torch.float64)
                j = torch.floor(u * n).long()
                keep = j < self.capacity
                slots, perm = torch.sort(j[keep], stable=True)  # stream order kept within a slot
                rest = rest[keep][perm]
                last = torch.ones_like(slots, dtype=torch.bool)
                last[:-1] = slots[1:] != slots[:-1]  # the last sample drawn for a slot wins
                slots, rest = slots[last], rest[last]
            self._write(slots, rest, x, y, task, stamps)
        self.seen += b

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` buffered samples drawn uniformly with replacement (so exactly ``n``; empty buffer: none)."""
        if self.size == 0 or n <= 0:
            idx = torch.zeros(0, dtype=torch.long, device=self.device)
        else:
            idx = torch.randint(0, self.size, (n,), generator=self.generator, device=self.device)
        return self.x[idx], self.y[idx], self.task[idx]

    def contents(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = self.size
        return self.x[:s], self.y[:s], self.task[:s]

    @torch.no_grad()
    def compress(self, importance: torch.Tensor, keep: float) -> int:
        """Keep ``keep * capacity`` samples, shared equally among the buffered tasks (one with fewer keeps
        all of its own), the most important of each task first; return how many were dropped.

        ``importance`` holds one score per filled slot (higher = keep). Kept samples are compacted to
        the front in insertion order, so FIFO still overwrites the oldest next.
        """
        s = self.size
        if importance.shape != (s,):
            raise ValueError(f"importance must have one score per buffered sample ({s}), got {tuple(importance.shape)}")
        target = max(1, int(keep * self.capacity))
        if s <= target:
            return 0
        tasks = self.task[:s]
        present, counts = torch.unique(tasks, return_counts=True)
        quota: dict[int, int] = {}
        remaining = target
        pending = sorted(zip(counts.tolist(), present.tolist()))  # smallest first: water-filling
        for i, (n_t, t) in enumerate(pending):  # a handful of tasks, not samples
            quota[t] = min(n_t, remaining // (len(pending) - i))
            remaining -= quota[t]
        kept = []
        for t, k in quota.items():
            idx = torch.nonzero(tasks == t).flatten()
            kept.append(idx[torch.topk(importance[idx].float(), k, sorted=False).indices])
        idx = torch.cat(kept)
        idx = idx[torch.argsort(self.stamp[idx])]  # insertion order
        k = len(idx)
        for buf in (self.x, self.y, self.task, self.stamp):
            buf[:k] = buf[idx].clone()
        self.stamp[k:] = -1
        self.size = k
        self.ptr = k % self.capacity
        return s - k
