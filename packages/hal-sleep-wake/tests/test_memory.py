"""L1: capacity, FIFO / reservoir policy, draws without replacement, class-balanced compression, logits."""

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


def test_sample_draws_without_replacement_at_most_what_is_there():
    buf = RingBuffer(8, (1, 2, 2), generator=torch.Generator().manual_seed(0))
    assert len(buf.sample(5)) == 0  # empty buffer: nothing to replay
    stream(buf, 3, 3)
    b = buf.sample(32)  # Mammoth's buffer: min(n, size) distinct samples
    assert b.x.shape[0] == b.y.shape[0] == b.task.shape[0] == 3 and sorted(b.y.tolist()) == [0, 1, 2]
    stream(buf, 5, 5, start=3)
    b = buf.sample(6)
    assert len(b) == 6 and len(set(b.y.tolist())) == 6


def test_own_generator_leaves_the_buffers_stream_alone():
    """A caller with its own generator (REM) does not shift the draws of the wake's generator."""
    draws = []
    for extra in (False, True):
        buf = RingBuffer(8, (1, 2, 2), generator=torch.Generator().manual_seed(0))
        stream(buf, 8, 8)
        if extra:
            buf.sample(4, generator=torch.Generator().manual_seed(9))
        draws.append(buf.sample(4).y.tolist())
    assert draws[0] == draws[1]


def test_reservoir_push_is_the_one_by_one_algorithm():
    """A whole batch gives what pushing its samples one by one gives (same random draws)."""
    batched = RingBuffer(6, (1, 2, 2), generator=torch.Generator().manual_seed(4))
    single = RingBuffer(6, (1, 2, 2), generator=torch.Generator().manual_seed(4))
    stream(batched, 6, 6)
    stream(single, 6, 6)
    ids = torch.arange(6, 40)
    x = (ids % 256).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)
    batched.push(x, ids, 0)
    u = torch.rand(len(ids), generator=single.generator, dtype=torch.float64)  # the same draws, one at a time
    expect = single.y.clone()
    for i, n in enumerate(range(6, 40)):
        j = int(u[i] * (n + 1))
        if j < 6:
            expect[j] = int(ids[i])
    assert batched.y.tolist() == expect.tolist()


def test_logits_travel_with_their_samples():
    buf = RingBuffer(4, (1, 2, 2), policy="fifo", logit_dim=3)
    x = torch.zeros(6, 1, 2, 2, dtype=torch.uint8)
    y = torch.arange(6)
    logits = torch.arange(18.0).view(6, 3)
    buf.push(x, y, 0, logits=logits)
    b = buf.take(torch.arange(4))
    for label, row in zip(b.y.tolist(), b.logits):
        assert row.tolist() == logits[label].tolist()
    with pytest.raises(ValueError, match="keeps logits"):
        buf.push(x, y, 0)


def test_compress_keeps_equal_class_shares_of_the_most_important_in_order():
    """The audit's defect: equal shares per *task* let one task's buffer turn into one class."""
    buf = RingBuffer(20, (1, 2, 2), policy="fifo")
    ids = torch.arange(20)
    labels = torch.tensor([0] * 3 + [1] * 11 + [2] * 3 + [3] * 3)  # task 0 = classes 0, 1 (unbalanced)
    x = ids.to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)
    buf.push(x[:14], labels[:14], 0)
    buf.push(x[14:], labels[14:], 1)
    importance = ids.float()  # later samples matter more
    importance[1] = 100.0  # one early sample of class 0 matters most
    dropped = buf.compress(importance, keep=0.5)
    assert dropped == 10 and len(buf) == 10
    # water-filling over classes, smallest first: 10 // 4 = 2 for class 0, 8 // 3 = 2 for class 2,
    # 6 // 2 = 3 for class 3, the remaining 3 for class 1: no class dominates, none vanishes
    assert buf.class_counts() == {0: 2, 1: 3, 2: 2, 3: 3}
    kept = buf.x[:10, 0, 0, 0].tolist()
    assert kept == [1, 2, 11, 12, 13, 15, 16, 17, 18, 19]  # most important per class, in insertion order
    stream(buf, 12, 4, start=100)  # fills the 10 free slots, then overwrites the oldest kept (fifo)
    assert len(buf) == 20 and not {1, 2} & set(buf.x[:, 0, 0, 0].tolist())


def test_compress_gives_a_small_class_all_it_has():
    buf = RingBuffer(20, (1, 2, 2), policy="reservoir", generator=torch.Generator().manual_seed(0))
    stream(buf, 2, 2, task=0)  # labels 0, 1: one sample each
    x = torch.zeros(18, 1, 2, 2, dtype=torch.uint8)
    buf.push(x, torch.full((18,), 7), 1)
    buf.compress(torch.rand(20, generator=torch.Generator().manual_seed(1)), keep=0.5)
    assert buf.class_counts() == {0: 1, 1: 1, 7: 8}
