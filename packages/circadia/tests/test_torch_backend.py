"""The torch + peft backend on the tiny model: masks, training, NaN abort, merge."""

import math

import pytest
import torch

from circadia.backends.base import Backend, Example, TrainConfig, collate, lr_at, make_backend, tokenize_chat
from circadia.sleep.batches import build_batches

CHAT = [{"role": "user", "content": "What is my cat called?"}, {"role": "assistant", "content": "Your cat is called Miso."},
        {"role": "user", "content": "And my dog?"}, {"role": "assistant", "content": "Your dog is Pixel."}]


def test_assistant_mask_covers_exactly_the_replies(tiny_tokenizer):
    ids, mask = tokenize_chat(tiny_tokenizer, CHAT)
    assert len(ids) == len(mask)
    target = tiny_tokenizer.decode([i for i, m in zip(ids, mask) if m])
    assert target.replace("\n", "") == "Your cat is called Miso.<|im_end|>Your dog is Pixel.<|im_end|>"
    context = tiny_tokenizer.decode([i for i, m in zip(ids, mask) if not m])
    assert "What is my cat called?" in context and "Miso" not in context


def test_collate_right_pads(tiny_tokenizer):
    b = collate(tiny_tokenizer, [Example(CHAT), Example(CHAT[:2])], max_seq_len=512)
    assert b["input_ids"].shape == b["loss_mask"].shape == b["attention_mask"].shape
    row = b["attention_mask"][1]
    assert row[0] == 1 and row[-1] == 0 and (row[: row.sum()] == 1).all()
    assert (b["loss_mask"][b["attention_mask"] == 0] == 0).all()
    assert int(b["n_tokens"]) == int(b["attention_mask"].sum())


def test_lr_schedule_warmup_then_cosine():
    cfg = TrainConfig(iters=10, warmup=2, lr=1.0, min_lr_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(10)]
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))
    assert lrs[-1] == pytest.approx(0.1)


@pytest.fixture
def backend(tiny_model_dir):
    b = make_backend("torch", device="cpu")
    b.load(tiny_model_dir)
    return b


def memories():
    return [Example([{"role": "user", "content": f"Tell me about day {i}."}, {"role": "assistant", "content": "Sure thing, Jordan! It was sunny."}])
            for i in range(4)]


def test_protocol_and_registry(backend):
    assert isinstance(backend, Backend) and backend.name == "torch"
    with pytest.raises(ValueError):
        make_backend("nope")


def test_training_reduces_loss_and_writes_a_loadable_adapter(backend, tiny_model_dir, tmp_path):
    data = memories()
    before = backend.loss(data)
    cfg = TrainConfig(iters=12, batch_size=2, lr=2e-2, warmup=2, lora_rank=8, lora_alpha=16, max_seq_len=64, seed=0,
                      target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"))
    batches = build_batches(data, [], [], iters=cfg.iters, batch_size=cfg.batch_size, replay_fraction=0.0, seed=0)
    report = backend.train(batches, cfg, tmp_path / "adapter")
    after = backend.loss(data)
    assert not report.aborted_nan and len(report.losses) == 12 and report.tokens > 0
    assert after < before - 0.5, (before, after)
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    reloaded = make_backend("torch", device="cpu")
    reloaded.load(tiny_model_dir, tmp_path / "adapter")
    assert reloaded.loss(data) == pytest.approx(after, abs=1e-5)
    # continuing a loaded adapter keeps improving
    import dataclasses

    cont = reloaded.train(batches[:4], dataclasses.replace(cfg, lr=2e-3, warmup=0), tmp_path / "adapter2")
    assert not cont.aborted_nan and reloaded.loss(data) < after


def test_same_seed_same_result(tiny_model_dir, tmp_path):
    cfg = TrainConfig(iters=3, batch_size=2, lr=1e-3, warmup=1, max_seq_len=64, seed=7, lora_dropout=0.1)
    batches = build_batches(memories(), [], [], iters=3, batch_size=2, replay_fraction=0.0, seed=0)
    losses = []
    for k in range(2):
        b = make_backend("torch", device="cpu")
        b.load(tiny_model_dir)
        b.train(batches, cfg, tmp_path / f"a{k}")
        losses.append(b.loss(memories()))
    assert losses[0] == losses[1]


def test_nan_loss_aborts_and_writes_nothing(tiny_model_dir, tmp_path):
    b = make_backend("torch", device="cpu")
    b.load(tiny_model_dir)
    with torch.no_grad():
        b.model.model.layers[0].mlp.down_proj.weight.fill_(float("inf"))
    cfg = TrainConfig(iters=3, batch_size=2, max_seq_len=64)
    report = b.train(build_batches(memories(), [], [], iters=3, batch_size=2, replay_fraction=0, seed=0), cfg, tmp_path / "out")
    assert report.aborted_nan and len(report.losses) == 1 and not math.isfinite(report.losses[0])
    assert not (tmp_path / "out").exists()


def test_merge_matches_adapter(backend, tiny_model_dir, tmp_path):
    cfg = TrainConfig(iters=4, batch_size=2, lr=5e-3, warmup=1, max_seq_len=64)
    backend.train(build_batches(memories(), [], [], iters=4, batch_size=2, replay_fraction=0, seed=0), cfg, tmp_path / "ad")
    with_adapter = backend.loss(memories())
    backend.merge(tmp_path / "ad", tmp_path / "merged")
    merged = make_backend("torch", device="cpu")
    merged.load(tmp_path / "merged")
    assert merged.loss(memories()) == pytest.approx(with_adapter, abs=1e-4)
    import json

    assert json.loads((tmp_path / "merged" / "config.json").read_text())["rope_theta"] == 100000.0


def test_generate_is_deterministic(backend):
    a = backend.generate(CHAT[:1], max_tokens=5, temperature=1.3, seed=1)
    b = backend.generate(CHAT[:1], max_tokens=5, temperature=1.3, seed=1)
    g = backend.generate_many([CHAT[:1], CHAT[:3]], max_tokens=4, temperature=0.0, seed=0)
    assert a == b and len(g) == 2
