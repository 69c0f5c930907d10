"""Each distribution installs and imports alone; the vision packages pull nothing of the LLM stack."""

import importlib.metadata
import subprocess
import sys

import pytest

LLM_STACK = {"transformers", "peft", "mlx", "mlx-lm", "mlx_lm", "chromadb", "sentence-transformers", "gguf"}


@pytest.mark.parametrize("dist", ["circadian-core", "circadian-vision", "hal-sleep-wake", "circadia"])
def test_distribution_installed_with_metadata(dist):
    meta = importlib.metadata.metadata(dist)
    assert meta["Name"] == dist and meta["Version"]
    if dist != "circadian-core":
        assert any(r.startswith("circadian-core") for r in importlib.metadata.requires(dist))


@pytest.mark.parametrize("dist", ["circadian-core", "circadian-vision"])
def test_no_llm_stack_in_requirements(dist):
    reqs = {r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in importlib.metadata.requires(dist) or []}
    assert not (reqs & LLM_STACK), reqs & LLM_STACK


@pytest.mark.parametrize(
    "module,forbidden",
    [
        ("circadian_core", {"torch", "transformers", "mlx"}),
        ("circadian_vision", {"transformers", "peft", "mlx", "chromadb"}),
        ("hal_sleep_wake", {"transformers", "mlx", "chromadb"}),
        ("circadia", {"mlx"}),
    ],
)
def test_import_alone_pulls_nothing_heavy(module, forbidden):
    code = f"import sys, {module}; print(sorted(m for m in {sorted(forbidden)!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"importing {module} loaded {out.strip()}"
