"""torch and MLX compute the same logits from the same HF folder (with the rope_theta fix)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("mlx", reason="mlx is not installed (pip install 'circadia[mlx]')")

from circadia.backends.mlx_backend import load_mlx, mlx_config_overrides, mx  # mx after the BLAS choice

ATOL = 1e-4
TOKENS = np.random.default_rng(1).integers(3, 1000, size=(2, 48))


def _torch_logits(model_dir, tokens=TOKENS) -> np.ndarray:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return model(torch.tensor(tokens)).logits.float().numpy()


def _mlx_logits(model, tokens=TOKENS) -> np.ndarray:
    return np.array(model(mx.array(tokens)).astype(mx.float32))


def _nested_rope_copy(model_dir, dst, theta=100000.0):
    """The folder as transformers 5 writes it: rope_theta only under rope_parameters."""
    shutil.copytree(model_dir, dst)
    config = json.loads((dst / "config.json").read_text())
    config.pop("rope_theta", None)
    config["rope_parameters"] = {"rope_type": "default", "rope_theta": theta}
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_tiny_model_logits_agree(tiny_model_dir):
    model, _ = load_mlx(tiny_model_dir)
    np.testing.assert_allclose(_mlx_logits(model), _torch_logits(tiny_model_dir), atol=ATOL, rtol=0)


def test_nested_rope_theta_is_lifted_and_needed(tiny_model_dir, tmp_path):
    from mlx_lm import load

    folder = _nested_rope_copy(tiny_model_dir, tmp_path / "model")
    assert mlx_config_overrides(folder) == {"rope_theta": 100000.0}
    expected = _torch_logits(folder)

    fixed, _ = load_mlx(folder)
    assert fixed.layers[0].self_attn.rope.base == 100000.0
    np.testing.assert_allclose(_mlx_logits(fixed), expected, atol=ATOL, rtol=0)

    plain, _ = load(str(folder))  # what mlx-lm does on its own: silently RoPE base 10000
    assert plain.layers[0].self_attn.rope.base == 10000
    assert np.abs(_mlx_logits(plain) - expected).max() > 10 * ATOL


def test_rope_scaling_nested_by_transformers_is_lifted(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "rope_parameters": {
                    "rope_type": "llama3",
                    "rope_theta": 500000.0,
                    "factor": 32.0,
                    "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 8192,
                }
            }
        )
    )
    overrides = mlx_config_overrides(tmp_path)
    assert overrides["rope_theta"] == 500000.0
    assert overrides["rope_scaling"]["rope_type"] == "llama3" and overrides["rope_scaling"]["factor"] == 32.0
    (tmp_path / "config.json").write_text(json.dumps({"rope_theta": 10000.0}))
    assert mlx_config_overrides(tmp_path) == {}


@pytest.mark.slow
def test_real_smollm2_logits_agree_only_with_the_rope_fix(smollm2_dir, tmp_path):
    """The embedded SmolLM2-135M-Instruct: torch and MLX agree once rope_theta (100000) is read;
    with mlx-lm's own reading of a transformers-5 config.json (RoPE base 10000) they are ~10 apart."""
    from mlx_lm import load
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        add_generation_prompt=True,
        tokenize=False,
    )
    tokens = np.array([tokenizer.encode(prompt, add_special_tokens=False)])
    expected = _torch_logits(smollm2_dir, tokens)

    model, _ = load_mlx(smollm2_dir)
    got = _mlx_logits(model, tokens)
    # float32 on both sides; logits reach ~40 in magnitude, hence the small relative term
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-5)
    assert got[0, -1].argmax() == expected[0, -1].argmax()

    # the same weights in a folder whose config.json has rope_theta only under rope_parameters
    nested = tmp_path / "nested"
    nested.mkdir()
    for item in smollm2_dir.iterdir():
        if item.name != "config.json":
            (nested / item.name).symlink_to(item)
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert config["rope_parameters"]["rope_theta"] == 100000.0
    config.pop("rope_theta", None)
    (nested / "config.json").write_text(json.dumps(config))
    plain, _ = load(str(nested))
    assert np.abs(_mlx_logits(plain, tokens) - expected).max() > 1.0
    fixed, _ = load_mlx(nested)
    np.testing.assert_allclose(_mlx_logits(fixed, tokens), expected, atol=1e-4, rtol=1e-5)


@pytest.mark.slow
def test_real_smollm2_greedy_replies_match(smollm2_dir):
    from circadia.backends.base import make_backend

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    replies = {}
    for name in ("torch", "mlx"):
        backend = make_backend(name, device="cpu")
        backend.load(smollm2_dir)
        replies[name] = backend.generate(messages, max_tokens=12, temperature=0.0, seed=0)
    assert replies["mlx"] == replies["torch"]
    assert "Paris" in replies["mlx"]
