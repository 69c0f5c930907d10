"""The MLX backend on the tiny model: training lowers the loss, NaN aborts cleanly, adapters and
merges load in both frameworks, generation is seeded."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("mlx", reason="mlx is not installed (pip install 'circadia[mlx]')")
from circadia.adapters_convert import detect_format, mlx_to_peft
from circadia.backends.base import Example, TrainConfig, backend_class, make_backend
from circadia.backends.mlx_backend import MLXBackend, mx  # mx: imported after the BLAS choice
from circadia.sleep.batches import build_batches

# peft calls a deprecated transformers property
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")

CHATS = [
    ("What colour is the sky?", "The sky is blue."),
    ("Name a fruit.", "An apple is a fruit."),
    ("How many legs does a cat have?", "A cat has four legs."),
    ("Say hello.", "Hello there!"),
]
EXAMPLES = [Example([{"role": "user", "content": q}, {"role": "assistant", "content": a}]) for q, a in CHATS]
CFG = dict(batch_size=2, lr=1e-2, warmup=1, lora_rank=4, lora_alpha=8.0, max_seq_len=64, seed=0)


def _batches(iters: int, seed: int = 0):
    return build_batches(EXAMPLES, [], [], iters=iters, batch_size=2, replay_fraction=0.0, seed=seed)


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    """One 8-step training run shared by the tests that inspect its outputs."""
    backend = make_backend("mlx", device="cpu")
    backend.load(tiny_model_dir)
    before = backend.loss(EXAMPLES)
    out = tmp_path_factory.mktemp("mlx-train") / "adapter"
    report = backend.train(_batches(8), TrainConfig(iters=8, **CFG), out)
    return backend, before, report, out


def test_registry_resolves_mlx_lazily():
    assert backend_class("mlx") is MLXBackend
    assert MLXBackend.name == "mlx"


def test_training_lowers_the_loss_and_writes_an_mlx_adapter(trained):
    backend, before, report, out = trained
    after = backend.loss(EXAMPLES)
    assert not report.aborted_nan
    assert len(report.losses) == len(report.lrs) == len(report.grad_norms) == 8
    # a random tiny model sits at ~ln(49152) = 10.8 and its small tied embeddings bound how far LoRA
    # can move it: 8 steps take off ~0.3 nats (the same run, seeded, gives the same numbers)
    assert after < before - 0.2, (before, after, report.losses)
    assert max(report.losses[-3:]) < report.losses[0]
    assert report.tokens > 0 and report.tokens_per_s > 0
    assert report.adapter_dir == str(out) and detect_format(out) == "mlx"
    assert backend.loaded is None  # trained weights in memory: the cycle must not skip a reload
    assert report.lrs[0] == pytest.approx(CFG["lr"])  # warmup 1: step 0 already at lr
    assert report.lrs[-1] == pytest.approx(0.0, abs=1e-12)  # cosine to min_lr_ratio * lr = 0
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["lora_parameters"]["rank"] == 4 and config["lora_parameters"]["scale"] == 2.0
    assert config["lora_parameters"]["keys"] == [
        "self_attn.k_proj",
        "self_attn.o_proj",
        "self_attn.q_proj",
        "self_attn.v_proj",
    ]


def test_saved_adapter_reloads_and_converts_to_peft(trained, tiny_model_dir, tmp_path):
    backend, _, _, out = trained
    reloaded = MLXBackend()
    reloaded.load(tiny_model_dir, out)
    assert reloaded.loss(EXAMPLES) == pytest.approx(backend.loss(EXAMPLES), abs=1e-5)

    # the same adapter in peft format gives the same loss in torch (and loads in MLX too)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from circadia.backends.base import collate

    peft_dir = mlx_to_peft(out, tmp_path / "peft")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    batch = collate(tokenizer, EXAMPLES, 64)
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(peft_dir)
    ).eval()
    with torch.no_grad():
        logits = model(
            input_ids=torch.tensor(batch["input_ids"]), attention_mask=torch.tensor(batch["attention_mask"])
        ).logits
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]),
        torch.tensor(batch["input_ids"][:, 1:]).reshape(-1),
        reduction="none",
    )
    weights = torch.tensor(batch["loss_mask"][:, 1:]).reshape(-1)
    torch_loss = float((nll * weights).sum() / weights.sum())
    assert torch_loss == pytest.approx(backend.loss(EXAMPLES), abs=1e-4)

    from_peft = MLXBackend()
    from_peft.load(tiny_model_dir, peft_dir)
    assert from_peft.loss(EXAMPLES) == pytest.approx(torch_loss, abs=1e-4)


def test_merge_writes_a_plain_hf_folder_both_frameworks_load(trained, tiny_model_dir, tmp_path):
    backend, _, _, out = trained
    merged = tmp_path / "merged"
    backend.merge(out, merged)
    config = json.loads((merged / "config.json").read_text())
    assert config["rope_theta"] == 100000.0 and "quantization_config" not in config
    assert not (merged / "README.md").exists()

    plain = MLXBackend()
    plain.load(merged)
    assert plain.loss(EXAMPLES) == pytest.approx(backend.loss(EXAMPLES), abs=1e-4)

    from transformers import AutoModelForCausalLM

    tokens = np.random.default_rng(0).integers(3, 1000, size=(1, 12))
    torch_model = AutoModelForCausalLM.from_pretrained(merged).eval()
    with torch.no_grad():
        torch_logits = torch_model(torch.tensor(tokens)).logits.numpy()
    np.testing.assert_allclose(np.array(plain.model(mx.array(tokens))), torch_logits, atol=1e-4, rtol=0)

    with pytest.raises(FileExistsError):
        backend.merge(out, merged)


def test_training_continues_a_loaded_adapter(trained, tiny_model_dir, tmp_path):
    _, _, _, out = trained
    backend = MLXBackend()
    backend.load(tiny_model_dir, out)
    start = backend.loss(EXAMPLES)
    report = backend.train(
        _batches(2, seed=1), TrainConfig(iters=2, **{**CFG, "lora_rank": 16}), tmp_path / "night2"
    )
    assert not report.aborted_nan
    assert report.losses[0] == pytest.approx(start, abs=0.5)  # starts from yesterday's adapter, not from zero
    config = json.loads((tmp_path / "night2" / "adapter_config.json").read_text())
    assert config["lora_parameters"]["rank"] == 4  # the loaded adapter's shape is kept


def test_nan_aborts_writes_nothing_and_restores_the_model(tiny_model_dir, tmp_path):
    backend = MLXBackend()
    backend.load(tiny_model_dir)
    before = backend.loss(EXAMPLES)
    # an absurd learning rate: step 0 is finite, its update overflows, step 1's loss is not finite
    cfg = TrainConfig(iters=3, **{**CFG, "lr": 1e30, "warmup": 0, "grad_clip": 0.0})
    report = backend.train(_batches(3), cfg, tmp_path / "adapter")
    assert report.aborted_nan
    assert not all(np.isfinite(report.losses + report.grad_norms))
    assert not (tmp_path / "adapter").exists()
    assert report.adapter_dir is None
    assert backend.loss(EXAMPLES) == pytest.approx(before, abs=1e-6)
    assert backend.loaded == (str(tiny_model_dir), None)  # reloaded: memory holds the files again


def test_generation_is_seeded(tiny_model_dir):
    backend = MLXBackend()
    backend.load(tiny_model_dir)
    messages = [{"role": "user", "content": "Tell me something."}]
    a = backend.generate(messages, max_tokens=8, temperature=1.5, seed=7)
    b = backend.generate(messages, max_tokens=8, temperature=1.5, seed=7)
    c = backend.generate(messages, max_tokens=8, temperature=1.5, seed=8)
    assert a == b and a != c
    assert backend.generate(messages, max_tokens=8, temperature=0.0, seed=1) == backend.generate(
        messages, max_tokens=8, temperature=0.0, seed=2
    )
    with pytest.raises(ValueError, match="role"):
        backend.generate([{"role": "robot", "content": "x"}], max_tokens=2, temperature=0.0, seed=0)


def test_compiled_training_matches_eager_training(tiny_model_dir, tmp_path):
    """The GPU default (mx.compile, batch widths bucketed to 32 columns) trains exactly like eager."""
    cfg = TrainConfig(iters=2, **CFG)
    reports = {}
    for compiled in (False, True):
        backend = MLXBackend(compile=compiled)
        backend.load(tiny_model_dir)
        reports[compiled] = backend.train(_batches(2), cfg, tmp_path / f"compiled-{compiled}")
    assert reports[True].losses == pytest.approx(reports[False].losses, abs=1e-5)
    assert reports[True].grad_norms == pytest.approx(reports[False].grad_norms, rel=1e-4)
    assert reports[True].tokens == reports[False].tokens  # real tokens, not the bucket padding


def test_bucket_padding_changes_no_loss(tiny_model_dir, tiny_tokenizer):
    from circadia.backends.base import collate, pad_id_of
    from circadia.backends.mlx_backend import nll_sum, pad_width

    backend = MLXBackend()
    backend.load(tiny_model_dir)
    batch = collate(tiny_tokenizer, EXAMPLES, 64)
    ids, mask = pad_width(
        batch["input_ids"], batch["loss_mask"], multiple=32, pad_id=pad_id_of(tiny_tokenizer)
    )
    assert ids.shape[1] % 32 == 0 and ids.shape[1] > batch["input_ids"].shape[1]
    plain = [
        x.item() for x in nll_sum(backend.model, mx.array(batch["input_ids"]), mx.array(batch["loss_mask"]))
    ]
    padded = [x.item() for x in nll_sum(backend.model, mx.array(ids), mx.array(mask))]
    assert padded == pytest.approx(plain, rel=1e-6)
