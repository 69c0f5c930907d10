"""Convert LoRA adapters between peft (torch) and mlx-lm (MLX) formats, exactly.

The two libraries store the same low-rank update differently:

=====================  ===========================================  =========================================
                       peft                                         mlx-lm
=====================  ===========================================  =========================================
files                  adapter_config.json, adapter_model.safetensors adapter_config.json, adapters.safetensors
tensor key             ``base_model.model.<module>.lora_A.weight``  ``<module>.lora_a``
A shape                ``(r, in)``  (an ``nn.Linear(in, r)`` weight) ``(in, r)``  (used as ``x @ lora_a``)
B shape                ``(out, r)``                                 ``(r, out)``
scale of ``B A x``     ``lora_alpha / r`` (``/ sqrt(r)`` with rsLoRA),  ``lora_parameters.scale``, used as is
                       per module via ``rank_pattern``/``alpha_pattern``
which layers           ``target_modules`` (+ ``layers_to_transform``) ``num_layers`` (the LAST n blocks) + ``keys``
=====================  ===========================================  =========================================

Both compute ``y = W x + scale * B A x`` (dropout on ``x`` while training only), so a conversion is a
rename, a transpose and a choice of ``scale``/``lora_alpha`` such that ``scale * B A`` is unchanged.
mlx-lm has one rank and one scale for the whole adapter, so a peft adapter with per-module ranks or
alphas is converted by zero-padding ranks to the largest one (zero rows/columns add nothing) and by
folding each module's scale ratio into its B matrix. The result is exact (up to float rounding).

Only plain LoRA on linear layers is converted; DoRA, embedding LoRA, LoRA biases, ``modules_to_save``
and the other peft variants raise a ``ValueError`` that says so. Nothing here imports mlx: the files
are read and written with ``safetensors`` (torch tensors, so bfloat16 adapters survive).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
MLX_CONFIG = "adapter_config.json"
MLX_WEIGHTS = "adapters.safetensors"

_PEFT_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$")
_MLX_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<ab>[ab])$")
_LAYER = re.compile(r"^(?P<prefix>(?:.*\.)?layers)\.(?P<idx>\d+)\.(?P<rest>.+)$")

# peft config fields that change what a LoRA adapter computes and that mlx-lm cannot express.
# Each maps to the value that means "feature off".
_PEFT_UNSUPPORTED = {
    "use_dora": (False, None),
    "modules_to_save": (None, []),
    "lora_bias": (False, None),
    "bias": ("none", None),
    "fan_in_fan_out": (False, None),
    "layer_replication": (None, []),
    "target_parameters": (None, []),
    "trainable_token_indices": (None, {}, []),
    "use_qalora": (False, None),
    "alora_invocation_tokens": (None, []),
    "use_bdlora": (None, False),
}


def detect_format(path: str | os.PathLike) -> str:
    """Return ``"peft"`` or ``"mlx"`` for an adapter folder, or raise ``ValueError``."""
    path = Path(path)
    if (path / PEFT_WEIGHTS).is_file() and (path / PEFT_CONFIG).is_file():
        return "peft"
    if (path / MLX_WEIGHTS).is_file() and (path / MLX_CONFIG).is_file():
        return "mlx"
    raise ValueError(
        f"{path} is not a LoRA adapter folder: expected {PEFT_CONFIG} with {PEFT_WEIGHTS} (peft) "
        f"or with {MLX_WEIGHTS} (mlx-lm)"
    )


def peft_to_mlx(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    num_hidden_layers: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert the peft adapter folder ``src`` into an mlx-lm adapter folder ``dst``.

    ``num_hidden_layers`` is the base model's number of transformer blocks; it is read from the
    ``base_model_name_or_path`` folder's config.json when that exists locally. mlx-lm puts LoRA on the
    last ``num_layers`` blocks, so knowing it lets the converted adapter cover exactly the blocks peft
    covered; without it the adapter covers every block and the blocks peft left alone get a zero
    update (identical outputs, a few more trainable parameters if training continues in MLX).
    """
    src = Path(src)
    config = _read_json(src / PEFT_CONFIG)
    _check_peft_config(config, src)
    tensors = load_file(str(src / PEFT_WEIGHTS))

    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        match = _PEFT_KEY.match(key)
        if match is None:
            raise ValueError(
                f"{src / PEFT_WEIGHTS}: tensor {key!r} is not a LoRA A/B matrix of a linear layer; "
                "only plain LoRA on nn.Linear modules can be converted to mlx-lm"
            )
        pairs.setdefault(match["module"], {})[match["ab"]] = value
    _check_pairs(pairs, src / PEFT_WEIGHTS, "A", "B")

    use_rslora = bool(config.get("use_rslora", False))
    rank_pattern = config.get("rank_pattern") or {}
    alpha_pattern = config.get("alpha_pattern") or {}

    def scaling(module: str, rank: int) -> float:
        alpha = alpha_pattern.get(_pattern_key(alpha_pattern, module), config["lora_alpha"])
        return alpha / math.sqrt(rank) if use_rslora else alpha / rank

    # One global scale for mlx-lm: the config's default. Modules whose own scale differs (alpha or
    # rank patterns) carry the ratio in their B matrix; modules with a smaller rank are zero-padded.
    default_rank = int(config["r"])
    scale = config["lora_alpha"] / (math.sqrt(default_rank) if use_rslora else default_rank)
    max_rank = max(ab["A"].shape[0] for ab in pairs.values())
    out: dict[str, torch.Tensor] = {}
    for module, ab in sorted(pairs.items()):
        a, b = ab["A"], ab["B"]  # (r, in), (out, r)
        rank = a.shape[0]
        expected = rank_pattern.get(_pattern_key(rank_pattern, module), default_rank)
        if rank != expected:
            raise ValueError(f"{src}: module {module} has LoRA rank {rank} but the config says {expected}")
        ratio = scaling(module, rank) / scale
        a_mlx = a.t()  # (in, r)
        b_mlx = (b.float() * ratio).to(b.dtype).t() if ratio != 1.0 else b.t()  # (r, out)
        if rank < max_rank:
            a_mlx = torch.cat([a_mlx, a_mlx.new_zeros(a_mlx.shape[0], max_rank - rank)], dim=1)
            b_mlx = torch.cat([b_mlx, b_mlx.new_zeros(max_rank - rank, b_mlx.shape[1])], dim=0)
        out[f"{module}.lora_a"] = a_mlx.contiguous()
        out[f"{module}.lora_b"] = b_mlx.contiguous()

    layer_idx, keys = _layers_and_keys(pairs)
    if num_hidden_layers is None:
        num_hidden_layers = _base_num_layers(config.get("base_model_name_or_path"))
    if layer_idx and num_hidden_layers is not None:
        if max(layer_idx) >= num_hidden_layers:
            raise ValueError(
                f"{src}: adapter has block {max(layer_idx)} but the base model has {num_hidden_layers}"
            )
        num_layers = num_hidden_layers - min(layer_idx)
    else:
        num_layers = -1  # mlx-lm: every block
    mlx_config = {
        "fine_tune_type": "lora",
        "num_layers": num_layers,
        "lora_parameters": {
            "rank": int(max_rank),
            "scale": float(scale),
            "dropout": float(config.get("lora_dropout", 0.0) or 0.0),
            "keys": sorted(keys),
        },
        "model": config.get("base_model_name_or_path"),
        "converted_from": "peft",
    }
    return _write_adapter(dst, mlx_config, out, MLX_WEIGHTS, overwrite=overwrite, metadata={"format": "mlx"})


def mlx_to_peft(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    base_model_name_or_path: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert the mlx-lm adapter folder ``src`` into a peft LoRA adapter folder ``dst``.

    peft gets ``r`` = the mlx rank and ``lora_alpha = scale * r`` (so ``lora_alpha / r`` is mlx-lm's
    scale) and exactly the modules that have weights in ``adapters.safetensors``.
    """
    src = Path(src)
    config = _read_json(src / MLX_CONFIG)
    kind = config.get("fine_tune_type", "lora")
    if kind != "lora":
        raise ValueError(f"{src}: fine_tune_type {kind!r} cannot be converted; only 'lora' adapters can")
    params = config.get("lora_parameters")
    if not isinstance(params, dict) or "rank" not in params or "scale" not in params:
        raise ValueError(f"{src / MLX_CONFIG}: needs lora_parameters with 'rank' and 'scale' (mlx-lm format)")
    tensors = load_file(str(src / MLX_WEIGHTS))

    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        match = _MLX_KEY.match(key)
        if match is None:
            raise ValueError(
                f"{src / MLX_WEIGHTS}: tensor {key!r} is not a LoRA lora_a/lora_b matrix; "
                "DoRA magnitudes and fully fine-tuned weights cannot be converted to peft LoRA"
            )
        pairs.setdefault(match["module"], {})[match["ab"]] = value
    _check_pairs(pairs, src / MLX_WEIGHTS, "a", "b")

    rank = int(params["rank"])
    scale = float(params["scale"])
    out: dict[str, torch.Tensor] = {}
    for module, ab in sorted(pairs.items()):
        if ab["a"].shape[1] != rank:
            raise ValueError(f"{src}: module {module} has rank {ab['a'].shape[1]} but the config says {rank}")
        out[f"base_model.model.{module}.lora_A.weight"] = ab["a"].t().contiguous()  # (r, in)
        out[f"base_model.model.{module}.lora_B.weight"] = ab["b"].t().contiguous()  # (out, r)

    layer_idx, keys = _layers_and_keys(pairs)
    prefixes = _layer_prefixes(pairs)
    product = {f"{prefix}.{i}.{k}" for prefix in prefixes for i in layer_idx for k in keys}
    if layer_idx and len(prefixes) == 1 and product == set(pairs):
        target_modules: list[str] = sorted(keys)
        layers_to_transform: list[int] | None = sorted(layer_idx)
    else:  # an irregular set of modules: name each one (peft matches a full module name exactly)
        target_modules, layers_to_transform = sorted(pairs), None
    peft_config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name_or_path or config.get("model"),
        "r": rank,
        "lora_alpha": scale * rank,
        "lora_dropout": float(params.get("dropout", 0.0)),
        "use_rslora": False,
        "use_dora": False,
        "bias": "none",
        "fan_in_fan_out": False,
        "target_modules": target_modules,
        "layers_to_transform": layers_to_transform,
        "rank_pattern": {},
        "alpha_pattern": {},
        "modules_to_save": None,
        "init_lora_weights": True,
        "inference_mode": True,
    }
    return _write_adapter(dst, peft_config, out, PEFT_WEIGHTS, overwrite=overwrite, metadata={"format": "pt"})


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    num_hidden_layers: int | None = None,
    base_model_name_or_path: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert ``src`` into the other format (detected from its files) in ``dst``."""
    if detect_format(src) == "peft":
        return peft_to_mlx(src, dst, num_hidden_layers=num_hidden_layers, overwrite=overwrite)
    return mlx_to_peft(src, dst, base_model_name_or_path=base_model_name_or_path, overwrite=overwrite)


# --------------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"{path} not found: an adapter folder needs its {path.name}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); re-save the adapter") from exc


def _check_peft_config(config: dict, src: Path) -> None:
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{src}: peft_type {config.get('peft_type')!r} is not LoRA; only LoRA converts")
    for field, off in _PEFT_UNSUPPORTED.items():
        value = config.get(field)
        if value not in off:
            raise ValueError(
                f"{src / PEFT_CONFIG}: {field}={value!r} is not supported by mlx-lm LoRA; "
                f"train the adapter without it to convert"
            )
    for field in ("r", "lora_alpha"):
        if field not in config:
            raise ValueError(f"{src / PEFT_CONFIG}: missing {field!r}")


def _check_pairs(pairs: dict[str, dict[str, torch.Tensor]], where: Path, a: str, b: str) -> None:
    if not pairs:
        raise ValueError(f"{where} holds no LoRA tensors")
    for module, ab in pairs.items():
        if set(ab) != {a, b}:
            raise ValueError(
                f"{where}: module {module} has {sorted(ab)} but needs both lora_{a} and lora_{b}"
            )


def _pattern_key(patterns: dict, module: str) -> str:
    """peft's rule (peft.utils.other.get_pattern_key): first pattern matching the module name's end."""
    for key in patterns:
        if re.match(rf"(.*\.)?({key})$", module):
            return key
    return module


def _layers_and_keys(pairs: Iterable[str]) -> tuple[set[int], set[str]]:
    """Block indices that carry LoRA and the module names relative to a block (mlx-lm's ``keys``).

    A module outside the stack of blocks (say ``lm_head``) is its own key; mlx-lm matches such keys
    against the model's top-level module names.
    """
    idx: set[int] = set()
    keys: set[str] = set()
    for module in pairs:
        match = _LAYER.match(module)
        if match:
            idx.add(int(match["idx"]))
            keys.add(match["rest"])
        else:
            keys.add(module)
    return idx, keys


def _layer_prefixes(pairs: Iterable[str]) -> set[str]:
    return {m["prefix"] for m in map(_LAYER.match, pairs) if m}


def _base_num_layers(base: str | None) -> int | None:
    if not base or not (Path(base) / "config.json").is_file():
        return None
    config = json.loads((Path(base) / "config.json").read_text())
    config = config.get("text_config", config)
    n = config.get("num_hidden_layers")
    return int(n) if n is not None else None


def _write_adapter(
    dst: str | os.PathLike,
    config: dict,
    tensors: dict[str, torch.Tensor],
    weights_name: str,
    *,
    overwrite: bool,
    metadata: dict[str, str],
) -> Path:
    """Write config + weights into ``dst`` all at once (a temp folder renamed into place)."""
    dst = Path(dst)
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise FileExistsError(f"{dst} exists and is not empty; pick a new folder or pass overwrite=True")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        save_file(tensors, str(tmp / weights_name), metadata=metadata)
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m circadia.adapters_convert",
        description="Convert a LoRA adapter folder between peft and mlx-lm formats (direction detected).",
    )
    parser.add_argument(
        "src", help="adapter folder (peft: adapter_model.safetensors; mlx-lm: adapters.safetensors)"
    )
    parser.add_argument("dst", help="new folder for the converted adapter")
    parser.add_argument("--num-hidden-layers", type=int, default=None, help="base model blocks (peft -> mlx)")
    parser.add_argument("--base-model", default=None, help="base_model_name_or_path to record (mlx -> peft)")
    parser.add_argument("--overwrite", action="store_true", help="replace dst if it exists")
    args = parser.parse_args(argv)
    try:
        fmt = detect_format(args.src)
        out = convert(
            args.src,
            args.dst,
            num_hidden_layers=args.num_hidden_layers,
            base_model_name_or_path=args.base_model,
            overwrite=args.overwrite,
        )
    except (ValueError, FileExistsError) as exc:
        parser.exit(2, f"error: {exc}\n")
    print(f"{fmt} -> {'mlx' if fmt == 'peft' else 'peft'}: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
