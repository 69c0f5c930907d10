"""Any Hugging Face hub model by name, downloaded once, with one clear error when offline."""

from __future__ import annotations

import os
from pathlib import Path


class ModelUnavailableError(RuntimeError):
    """The model cannot be had here (offline, unknown name, gated); the message names the fix."""


def fetch_hub_model(name: str, *, cache_dir: str | Path | None = None, revision: str | None = None) -> Path:
    """Download (or find in the HF cache) the hub model ``name``; return its local folder.

    Only the files a causal LM needs are fetched (config, tokenizer, safetensors weights).
    ``CIRCADIAN_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` forces the offline path: the cache is used if
    it has the model, else :class:`ModelUnavailableError` tells how to place the files by hand.
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:  # pragma: no cover - transformers depends on it
        raise ModelUnavailableError("huggingface_hub is not installed; pip install huggingface_hub") from err
    offline = os.environ.get("CIRCADIAN_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"
    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "tokenizer*"]
    try:
        path = snapshot_download(
            name,
            revision=revision,
            cache_dir=None if cache_dir is None else str(cache_dir),
            allow_patterns=patterns,
            local_files_only=offline,
        )
    except Exception as err:  # network errors, 404s, gated repos all end up here
        raise ModelUnavailableError(
            f"cannot get hub model {name!r} ({type(err).__name__}: {err}). "
            + (
                "Offline: download it elsewhere with `huggingface-cli download "
                f"{name}` and copy the folder here, then pass that folder instead of the name, "
                "or use the embedded model (`--model embedded`)."
            )
        ) from err
    folder = Path(path)
    if not (folder / "config.json").exists():
        raise ModelUnavailableError(f"hub model {name!r} has no config.json; is it a transformers causal LM?")
    return folder


def build_hub_model(config: dict, *, out: Path, device: str, artifacts: dict[str, Path]) -> None:
    """Pipeline artifact entry: hub model ``config["name"]`` (optional ``revision``) copied into ``out``
    as a plain HF folder (rope_theta copied to the top level so mlx-lm reads it too)."""
    import shutil

    from circadia.models.embedded import fix_config_for_mlx

    unknown = set(config) - {"name", "revision"}
    if unknown or "name" not in config:
        from circadian_core.config import ConfigError

        raise ConfigError(f"hub model artifact: config needs 'name' (and optionally 'revision'); got {sorted(config)}")
    src = fetch_hub_model(str(config["name"]), revision=config.get("revision"))
    shutil.copytree(src, out, symlinks=False, dirs_exist_ok=True)
    fix_config_for_mlx(out)
    import json

    (Path(out) / "circadia_source.json").write_text(json.dumps({"source": f"hub:{config['name']}", "revision": config.get("revision")}) + "\n")
