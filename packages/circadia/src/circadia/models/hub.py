"""Any Hugging Face hub model by name, downloaded once, with one clear error when offline.

Models the project uses are pinned to a commit (:data:`PINNED_REVISIONS`), so a rerun next year
gets the same weights; any other name follows its ``main`` branch unless a revision is passed.
"""

from __future__ import annotations

import os
from pathlib import Path

# Hub commits of the models the project names (params.yaml pins the same value in the artifact's
# config). Taken from public references to these exact commits; verify on a networked machine with
# `huggingface-cli download NAME --revision SHA` (a wrong SHA fails loudly, never silently).
PINNED_REVISIONS: dict[str, str] = {
    "HuggingFaceTB/SmolLM2-1.7B-Instruct": "31b70e2e869a7173562077fd711b654946d38674",
    "HuggingFaceTB/SmolLM2-360M-Instruct": "a10cc1512eabd3dde888204e902eca88bddb4951",
    "HuggingFaceTB/SmolLM2-135M-Instruct": "12fd25f77366fa6b3b4b768ec3050bf629380bac",
}
UNPINNED = "main"  # pass revision="main" to follow the branch on purpose


def pinned_revision(name: str, revision: str | None = None) -> str | None:
    """``revision`` if given, else the pinned commit of ``name`` (None: not pinned, the hub's main)."""
    return revision if revision is not None else PINNED_REVISIONS.get(name)


def hub_cache_folder(name: str, cache_dir: str | Path | None = None) -> Path:
    """Where huggingface_hub keeps ``name``: ``<cache>/models--<org>--<model>``."""
    if cache_dir is None:
        from huggingface_hub.constants import HF_HUB_CACHE

        cache_dir = HF_HUB_CACHE
    return Path(cache_dir) / ("models--" + name.replace("/", "--"))


class ModelUnavailableError(RuntimeError):
    """The model cannot be had here (offline, unknown name, gated); the message names the fix."""


def fetch_hub_model(name: str, *, cache_dir: str | Path | None = None, revision: str | None = None) -> Path:
    """Download (or find in the HF cache) the hub model ``name``; return its local folder.

    ``revision`` defaults to the pinned commit of ``name`` (:data:`PINNED_REVISIONS`); pass
    ``"main"`` to follow the branch. Only the files a causal LM needs are fetched (config,
    tokenizer, safetensors weights).
    ``CIRCADIAN_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` forces the offline path: the cache is used if
    it has the model, else :class:`ModelUnavailableError` tells how to place the files by hand.
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:  # pragma: no cover - transformers depends on it
        raise ModelUnavailableError("huggingface_hub is not installed; pip install huggingface_hub") from err
    if name.count("/") != 1 or name.startswith((".", "/", "~")):
        raise ModelUnavailableError(
            f"{name!r} is neither a model folder here (no such folder) nor a hub name (org/model); "
            "build or copy the folder first, or pass a hub name"
        )
    revision = pinned_revision(name, revision)
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
        raise ModelUnavailableError(offline_message(name, revision, cache_dir, err)) from err
    folder = Path(path)
    if not (folder / "config.json").exists():
        raise ModelUnavailableError(f"hub model {name!r} has no config.json; is it a transformers causal LM?")
    return folder


def offline_message(name: str, revision: str | None, cache_dir: str | Path | None, err: BaseException) -> str:
    """The one error of a hub model that cannot be had here: what failed and the files to place by hand."""
    rev = revision or UNPINNED
    snapshot = hub_cache_folder(name, cache_dir) / "snapshots" / rev
    return (
        f"cannot get hub model {name!r} at revision {rev} ({type(err).__name__}: {err}). "
        f"Offline, place its files by hand: on a machine with network run `huggingface-cli download {name} --revision {rev}` and copy its "
        f"folder {hub_cache_folder(name, cache_dir).name} into {hub_cache_folder(name, cache_dir).parent} here "
        f"(the files must end up in {snapshot}/: config.json, model*.safetensors, tokenizer.json, "
        "tokenizer_config.json), or pass a local model folder instead of the name, or use the embedded "
        "model (`--model embedded`), or run the smoke profile (a random-init model of the same shape)"
    )


def build_hub_model(config: dict, *, out: Path, device: str, artifacts: dict[str, Path]) -> None:
    """Pipeline artifact entry: hub model ``config["name"]`` at ``revision`` (default: its pinned
    commit) copied into ``out`` as a plain HF folder (rope_theta copied to the top level so mlx-lm
    reads it too)."""
    import shutil

    from circadia.models.embedded import fix_config_for_mlx

    unknown = set(config) - {"name", "revision"}
    if unknown or "name" not in config:
        from circadian_core.config import ConfigError

        raise ConfigError(f"hub model artifact: config needs 'name' (and optionally 'revision'); got {sorted(config)}")
    revision = pinned_revision(str(config["name"]), config.get("revision"))
    src = fetch_hub_model(str(config["name"]), revision=revision)
    shutil.copytree(src, out, symlinks=False, dirs_exist_ok=True)
    fix_config_for_mlx(out)
    import json

    (Path(out) / "circadia_source.json").write_text(json.dumps({"source": f"hub:{config['name']}", "revision": revision}) + "\n")
