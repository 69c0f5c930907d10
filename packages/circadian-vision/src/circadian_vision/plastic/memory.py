"""EpisodicMemoryBank: a ring buffer of (normalized key, label) pairs read by kNN soft voting.

Writing stores each key L2-normalized at the write pointer and advances it; once the buffer is
full the oldest entries are overwritten first. Reading takes the cosine similarity of a query to
every *filled* slot (empty slots are masked out), keeps the ``k`` most similar, weights them by
``softmax(similarity / temperature)`` and sums the weights per label: the result is a probability
over classes. :meth:`neighbours` returns the slots behind a prediction so it can be inspected.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional as F


@dataclasses.dataclass
class Neighbours:
    """The memories behind a prediction: per query, the ``k`` nearest filled slots, best first."""

    slots: torch.Tensor  # (B, k) slot indices
    similarities: torch.Tensor  # (B, k) cosine similarities
    labels: torch.Tensor  # (B, k) stored labels
    ages: torch.Tensor  # (B, k) writes since each slot was written (0 = newest)


class EpisodicMemoryBank(nn.Module):
    """Fixed-capacity kNN memory over normalized keys."""

    def __init__(self, capacity: int, dim: int, num_classes: int, *, k: int = 10, temperature: float = 0.1) -> None:
        super().__init__()
        if capacity < 1 or dim < 1 or num_classes < 1:
            raise ValueError(f"memory needs capacity, dim and num_classes >= 1, got {capacity}, {dim}, {num_classes}")
        if k < 1:
            raise ValueError(f"memory k must be >= 1, got {k}")
        if temperature <= 0:
            raise ValueError(f"memory temperature must be > 0, got {temperature}")
        self.capacity = int(capacity)
        self.dim = int(dim)
        self.num_classes = int(num_classes)
        self.k = int(k)
        self.temperature = float(temperature)
        self.register_buffer("keys", torch.zeros(capacity, dim))
        self.register_buffer("labels", torch.full((capacity,), -1, dtype=torch.long))
        self.register_buffer("written_at", torch.full((capacity,), -1, dtype=torch.long))
        self.ptr = 0  # next slot to write
        self.total_writes = 0

    # ---- state --------------------------------------------------------------------------------
    @property
    def filled(self) -> int:
        return min(self.total_writes, self.capacity)

    @property
    def fill_fraction(self) -> float:
        return self.filled / self.capacity

    def clear(self) -> None:
        self.keys.zero_()
        self.labels.fill_(-1)
        self.written_at.fill_(-1)
        self.ptr = 0
        self.total_writes = 0

    # ---- writing ------------------------------------------------------------------------------
    @torch.no_grad()
    def write(self, keys: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Store ``keys`` (B, dim) with ``labels`` (B,) at the ring pointer; returns the slots used."""
        if keys.ndim != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"memory keys must have shape (B, {self.dim}), got {tuple(keys.shape)}")
        if len(labels) != len(keys):
            raise ValueError(f"memory got {len(keys)} keys but {len(labels)} labels")
        labels = labels.long().to(self.labels.device)
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(f"memory labels must be in 0..{self.num_classes - 1}")
        n = len(keys)
        order = torch.arange(self.total_writes, self.total_writes + n, device=self.labels.device)
        if n > self.capacity:  # only the newest `capacity` survive
            keys, labels, order = keys[-self.capacity :], labels[-self.capacity :], order[-self.capacity :]
        offset = n - len(keys)  # the writes that were overwritten within this same call
        slots = (self.ptr + offset + torch.arange(len(keys), device=self.labels.device)) % self.capacity
        self.keys[slots] = F.normalize(keys.float(), dim=1).to(self.keys.device)
        self.labels[slots] = labels
        self.written_at[slots] = order
        self.ptr = (self.ptr + n) % self.capacity
        self.total_writes += n
        return slots

    # ---- reading ------------------------------------------------------------------------------
    def similarities(self, queries: torch.Tensor) -> torch.Tensor:
        """Cosine similarity (B, capacity) of each query to each slot; empty slots are ``-inf``."""
        q = F.normalize(queries.float(), dim=1).to(self.keys.device)
        sims = q @ self.keys.T
        return sims.masked_fill((self.labels < 0)[None, :], float("-inf"))

    def _filled_similarities(self, queries: torch.Tensor) -> torch.Tensor:
        """Similarities to slots ``0 .. filled-1`` only: the ring fills in slot order, so these are
        exactly the filled ones and no masking is needed (same ranking as :meth:`similarities`)."""
        q = F.normalize(queries.float(), dim=1).to(self.keys.device)
        return q @ self.keys[: self.filled].T

    @torch.no_grad()
    def neighbours(self, queries: torch.Tensor, k: int | None = None) -> Neighbours:
        """The ``k`` (default: the bank's k) most similar filled slots per query, best first."""
        k = min(k or self.k, self.filled)
        sims = self._filled_similarities(queries)
        if k == 0:
            empty = torch.empty(len(queries), 0, device=sims.device)
            return Neighbours(empty.long(), empty, empty.long(), empty.long())
        top, slots = sims.topk(k, dim=1)
        ages = self.total_writes - 1 - self.written_at[slots]
        return Neighbours(slots, top, self.labels[slots], ages)

    @torch.no_grad()
    def predict_proba(self, queries: torch.Tensor, max_elements: int = 1 << 26) -> torch.Tensor:
        """Soft kNN vote: probabilities (B, num_classes); uniform while the bank is empty.

        Queries are processed in chunks so that no similarity matrix exceeds ``max_elements``.
        """
        b = len(queries)
        if self.filled == 0:
            return torch.full((b, self.num_classes), 1.0 / self.num_classes, device=self.keys.device)
        chunk = max(1, max_elements // self.filled)
        out = []
        for i in range(0, b, chunk):
            nb = self.neighbours(queries[i : i + chunk])
            weights = torch.softmax(nb.similarities / self.temperature, dim=1)
            votes = torch.zeros(len(weights), self.num_classes, device=weights.device)
            out.append(votes.scatter_add_(1, nb.labels, weights))
        return torch.cat(out)

    def forward(self, queries: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (usable as logits)."""
        return torch.log(self.predict_proba(queries).clamp_min(1e-12))

    @torch.no_grad()
    def predict(self, queries: torch.Tensor) -> torch.Tensor:
        return self.predict_proba(queries).argmax(1)

    def extra_repr(self) -> str:
        return f"capacity={self.capacity}, dim={self.dim}, filled={self.filled}, k={self.k}"
