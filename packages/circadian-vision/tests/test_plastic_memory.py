"""EpisodicMemoryBank: stored keys recall their labels, the ring overwrites the oldest, empty slots never vote."""

import pytest
import torch

from circadian_vision.plastic import EpisodicMemoryBank

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_memory_returns_the_stored_label_for_a_stored_key():
    gen = torch.Generator().manual_seed(0)
    keys = torch.randn(40, 16, generator=gen)
    labels = torch.arange(40) % 7
    mem = EpisodicMemoryBank(100, 16, 7, k=1)
    mem.write(keys, labels)
    assert torch.equal(mem.predict(keys), labels)
    assert torch.equal(mem.predict(3.0 * keys), labels)  # cosine: the scale does not matter
    nb = mem.neighbours(keys[:5])
    assert torch.equal(nb.labels[:, 0], labels[:5])
    assert torch.equal(nb.slots[:, 0], torch.arange(5))
    assert torch.allclose(nb.similarities[:, 0], torch.ones(5))


def test_ring_buffer_overwrites_the_oldest_first():
    mem = EpisodicMemoryBank(4, 2, 3, k=1)
    mem.write(torch.tensor([[1.0, 0], [0, 1], [-1, 0], [0, -1]]), torch.tensor([0, 1, 2, 0]))
    assert mem.filled == 4 and mem.fill_fraction == 1.0
    mem.write(torch.tensor([[1.0, 0.1]]), torch.tensor([2]))  # replaces slot 0, the oldest
    assert mem.labels.tolist() == [2, 1, 2, 0]
    assert mem.predict(torch.tensor([[1.0, 0.0]])).tolist() == [2]
    mem.write(torch.tensor([[0.1, 1.0], [0.0, -1.0]]), torch.tensor([0, 1]))  # slots 1, 2 next
    assert mem.labels.tolist() == [2, 0, 1, 0]
    ages = mem.neighbours(torch.tensor([[0.0, -1.0]]), k=4).ages
    assert ages.min() == 0  # the newest write has age 0
    assert mem.total_writes == 7


def test_one_write_larger_than_the_bank_keeps_the_newest():
    mem = EpisodicMemoryBank(3, 2, 10, k=1)
    keys = torch.tensor([[float(i), 1.0] for i in range(5)])
    mem.write(keys, torch.arange(5))
    assert sorted(mem.labels.tolist()) == [2, 3, 4]
    mem.write(torch.tensor([[0.0, 1.0]]), torch.tensor([9]))  # the oldest survivor (label 2) goes
    assert sorted(mem.labels.tolist()) == [3, 4, 9]


def test_empty_slots_are_masked_and_never_vote():
    mem = EpisodicMemoryBank(10, 4, 5, k=10)
    assert torch.allclose(mem.predict_proba(torch.randn(3, 4)), torch.full((3, 5), 0.2))  # empty: uniform
    mem.write(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]), torch.tensor([3, 4]))
    sims = mem.similarities(torch.tensor([[0.0, 0, 1.0, 0]]))
    assert torch.isinf(sims[0, 2:]).all() and (sims[0, 2:] < 0).all()
    nb = mem.neighbours(torch.tensor([[0.0, 0, 1.0, 0]]))
    assert nb.slots.shape == (1, 2)  # k is capped by the filled slots
    proba = mem.predict_proba(torch.tensor([[0.0, 0, 1.0, 0]]))
    assert proba[0, :3].sum() == 0 and torch.isclose(proba.sum(), torch.tensor(1.0))


def test_soft_vote_weights_neighbours_by_similarity():
    mem = EpisodicMemoryBank(10, 2, 2, k=3, temperature=0.1)
    mem.write(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), torch.tensor([0, 0, 1]))
    proba = mem.predict_proba(torch.tensor([[0.2, 1.0]]))
    assert proba[0, 1] > proba[0, 0]  # the single very close memory outvotes two far ones


def test_bad_writes_are_rejected():
    mem = EpisodicMemoryBank(4, 3, 2)
    with pytest.raises(ValueError, match="shape"):
        mem.write(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels must be in"):
        mem.write(torch.randn(2, 3), torch.tensor([0, 2]))
