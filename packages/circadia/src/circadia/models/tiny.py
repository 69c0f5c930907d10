"""A tiny randomly initialised Llama-architecture model with a real tokenizer, for fast tests.

The architecture is SmolLM2's (Llama: RMSNorm, RoPE, SwiGLU, grouped-query attention, tied
embeddings) at a few hundred thousand parameters plus the embedding table, and the tokenizer is
SmolLM2's own (with its ChatML chat template), so every code path - chat templates, assistant
masks, LoRA target modules, peft/mlx-lm loading - is the one the real model takes.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_CONFIG = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "rope_theta": 100000.0,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "initializer_range": 0.02,
}


def make_tiny_model(path: str | Path, seed: int = 0, *, tokenizer=None, **overrides) -> Path:
    """Write a tiny random Llama + the SmolLM2 tokenizer as an HF folder at ``path``; return it.

    ``tokenizer`` defaults to :func:`circadia.models.embedded.embedded_tokenizer` (cached after
    the first call). ``overrides`` change :data:`TINY_CONFIG` keys. Same seed, same weights.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from circadia.models.embedded import fix_config_for_mlx

    if tokenizer is None:
        from circadia.models.embedded import embedded_tokenizer

        tokenizer = embedded_tokenizer()
    values = {**TINY_CONFIG, **overrides}
    rope_theta = float(values.pop("rope_theta"))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        **values,
    )
    gen = torch.random.fork_rng()
    with gen:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.eval()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    fix_config_for_mlx(path)
    (path / "circadia_source.json").write_text(json.dumps({"source": "tiny", "seed": seed}, indent=2) + "\n")
    return path
