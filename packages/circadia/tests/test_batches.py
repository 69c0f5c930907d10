"""The shared batch builder: replay fraction honoured, deterministic, small logs handled."""

import math

import pytest

from circadia.backends.base import Example
from circadia.sleep.batches import build_batches, mix_summary, read_batches, replay_counts, write_batches


def ex(i, source):
    return Example([{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}], source=source)


MEM = [ex(i, "memory") for i in range(7)]
DREAM = [ex(100 + i, "dream") for i in range(3)]
REPLAY = [ex(200 + i, "replay") for i in range(30)]


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.2, 0.25, 0.5])
@pytest.mark.parametrize("iters,bs", [(10, 4), (7, 3), (25, 8)])
def test_replay_fraction_is_honoured(fraction, iters, bs):
    batches = build_batches(MEM, DREAM, REPLAY, iters=iters, batch_size=bs, replay_fraction=fraction, seed=0)
    assert len(batches) == iters and all(len(b) == bs for b in batches)
    mix = mix_summary(batches)
    assert mix.get("n_replay", 0) == math.floor(iters * bs * fraction + 0.5)
    # every prefix tracks the fraction to within one example
    seen = 0
    for k, b in enumerate(batches, start=1):
        seen += sum(e.source == "replay" for e in b)
        assert abs(seen - k * bs * fraction) <= 1


def test_deterministic_and_seed_dependent():
    a = build_batches(MEM, DREAM, REPLAY, iters=6, batch_size=4, replay_fraction=0.2, seed=3)
    b = build_batches(MEM, DREAM, REPLAY, iters=6, batch_size=4, replay_fraction=0.2, seed=3)
    c = build_batches(MEM, DREAM, REPLAY, iters=6, batch_size=4, replay_fraction=0.2, seed=4)
    key = lambda bs: [[e.messages[0]["content"] for e in b] for b in bs]  # noqa: E731
    assert key(a) == key(b) and key(a) != key(c)


def test_every_new_example_before_any_twice():
    batches = build_batches(MEM, DREAM, [], iters=5, batch_size=2, replay_fraction=0.2, seed=0)
    flat = [e.messages[0]["content"] for b in batches for e in b]
    assert len(set(flat)) == len(flat) == 10  # 10 new examples, 10 slots, no replay pool -> fraction 0


def test_log_smaller_than_one_batch():
    batches = build_batches(MEM[:1], [], REPLAY, iters=3, batch_size=8, replay_fraction=0.25, seed=0)
    assert len(batches) == 3 and all(len(b) == 8 for b in batches)
    assert all(sum(e.source == "memory" for e in b) == 6 for b in batches)


def test_nothing_new_means_no_batches():
    assert build_batches([], [], REPLAY, iters=5, batch_size=4, replay_fraction=0.2, seed=0) == []


def test_max_epochs_caps_iters():
    batches = build_batches(MEM[:2], [], [], iters=100, batch_size=2, replay_fraction=0.0, seed=0, max_epochs=3)
    assert len(batches) == 3


def test_replay_counts_bad_fraction():
    with pytest.raises(ValueError):
        replay_counts(3, 4, 1.0)


def test_write_read_roundtrip(tmp_path):
    batches = build_batches(MEM, DREAM, REPLAY, iters=3, batch_size=4, replay_fraction=0.25, seed=1)
    path = write_batches(tmp_path / "train.jsonl", batches)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    back = read_batches(path)
    assert [[e.messages for e in b] for b in back] == [[e.messages for e in b] for b in batches]
