"""L1: capacity, FIFO / reservoir policy, exact replay counts, entropy-aware compression."""

from __future__ import annotations

import pytest
import torch

from hal_sleep_wake.memory import RingBuffer


def stream(buf: RingBuffer, n: int, batch: int, task: int = 0, start: int = 0) -> None:
    for s in range(start, start + n, batch):
        ids = torch.arange(s, min(s + batch, start + n))
        x = (ids % 256).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)
        buf.push(x, ids, task)


@pytest.mark.parametrize("policy", ["fifo", "reservoir"])
def test_capacity_is_kept(policy):
    buf = RingBuffer(10, (1, 2, 2), policy=policy, generator=torch.Generator().manual_seed(0))
    stream(buf, 7, 3)
    assert len(buf) == 7 and buf.seen == 7
    stream(buf, 100, 7, start=7)
    assert len(buf) == buf.capacity == 10 and buf.seen == 107
    assert buf.x.shape[0] == 10


def test_fifo_keeps_the_newest_in_a_ring():
    buf = RingBuffer(10, (1, 2, 2), policy="fifo")
    stream(buf, 23, 4)
    assert sorted(buf.y.tolist()) == list(range(13, 23))
    stream(buf, 25, 25, start=23)  # one batch larger than the capacity
    assert sorted(buf.y.tolist()) == list(range(38, 48))


def test_reservoir_is_a_uniform_sample_of_the_stream():
    n, cap, runs = 60, 10, 400
    counts = torch.zeros(n)
    for r in range(runs):
        buf = RingBuffer(cap, (1, 2, 2), policy="reservoir", generator=torch.Generator().manual_seed(r))
        stream(buf, n, 7)
        assert len(set(buf.y.tolist())) == cap  # no sample stored twice
        counts[buf.y] += 1
    p = counts / runs  # each sample should be kept with probability cap / n
    early, late = p[:20].mean().item(), p[-20:].mean().item()
    assert abs(early - cap / n) < 0.03 and abs(late - cap / n) < 0.03


def test_sample_draws_exactly_n_with_replacement():
    buf = RingBuffer(8, (1, 2, 2), generator=torch.Generator().manual_seed(0))
    assert buf.sample(5)[1].numel() == 0  # empty buffer: nothing to replay
    stream(buf, 3, 3)
    x, y, t = buf.sample(32)
    assert x.shape[0] == y.shape[0] == t.shape[0] == 32
    assert set(y.tolist()) <= {0, 1, 2}


def test_compress_keeps_equal_task_shares_of_the_most_important_in_order():
    buf = RingBuffer(20, (1, 2, 2), policy="fifo")
    stream(buf, 14, 7, task=0)
    stream(buf, 6, 6, task=1, start=14)
    importance = buf.y.float()  # later samples matter more
    importance[buf.y == 2] = 100.0  # one old sample matters most
    dropped = buf.compress(importance, keep=0.5)
    assert dropped == 10 and len(buf) == 10
    kept = buf.y[:10].tolist()
    assert kept == sorted(kept)  # insertion order
    assert set(kept) == {2, 10, 11, 12, 13, 15, 16, 17, 18, 19}  # 5 + 5: the top of each task
    stream(buf, 12, 4, start=100)  # fills the 10 free slots, then overwrites the oldest kept
    assert len(buf) == 20 and 2 not in buf.y.tolist() and 10 not in buf.y.tolist()


def test_compress_gives_a_small_task_all_it_has():
    buf = RingBuffer(20, (1, 2, 2), policy="reservoir", generator=torch.Generator().manual_seed(0))
    stream(buf, 2, 2, task=0)
    stream(buf, 18, 6, task=1, start=2)
    buf.compress(torch.rand(20, generator=torch.Generator().manual_seed(1)), keep=0.5)
    assert (buf.task[: len(buf)] == 0).sum() == 2 and (buf.task[: len(buf)] == 1).sum() == 8
