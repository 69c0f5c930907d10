"""The torch backend's fast paths give the numbers of the slow ones (tiny model).

Shared-prefix KV-cached generation, packed training batches, per-chat scoring, the token cache,
adapter swaps without reloading the base, and the dtype knob.
"""

import pytest
import torch

from circadia.backends.base import Example, TrainConfig
from circadia.backends.torch_backend import TorchBackend, pack_rows, resolve_dtype
from circadia.backends.torch_generate import common_prefix
from circadia.sleep.batches import build_batches

CHATS = [[{"role": "user", "content": text}] for text in
         ("What is 2 + 2?", "Name three colours, please, as a comma separated list.", "Say hi.",
          "Summarise: the library is closed on Friday for a staff training day and opens again on Monday.")]


def _examples(n: int = 5) -> list[Example]:
    return [Example([{"role": "user", "content": "word " * (3 * k + 1)}, {"role": "assistant", "content": "reply " * (k + 2)}])
            for k in range(n)]


@pytest.fixture
def backend(tiny_model_dir):
    be = TorchBackend(device="cpu")
    be.load(tiny_model_dir)
    return be


def _reference_greedy(be: TorchBackend, messages, max_new: int) -> list[int]:
    """Greedy decoding by full recomputation of one unpadded row (no cache, no batch)."""
    ids = list(be._prompt_ids(messages))
    core, head = be._parts()
    out = []
    with torch.no_grad():
        for _ in range(max_new):
            h = core(input_ids=torch.tensor([ids]), use_cache=False).last_hidden_state[:, -1]
            nxt = int(head(h).argmax(-1))
            if nxt == be.tokenizer.eos_token_id:
                break
            out.append(nxt)
            ids.append(nxt)
    return out


def test_common_prefix_leaves_every_row_a_token():
    assert common_prefix([[1, 2, 3], [1, 2, 4, 5]]) == 2
    assert common_prefix([[1, 2], [1, 2, 3]]) == 1  # the shorter row keeps one token of its own
    assert common_prefix([[7, 8], [9]]) == 0
    assert common_prefix([[5, 6, 7]]) == 2


def test_batched_prefix_cached_greedy_equals_unbatched_recomputation(backend):
    replies = backend.generate_many(CHATS, max_tokens=6, temperature=0.0, seed=0)
    for chat, reply in zip(CHATS, replies):
        want = backend.tokenizer.decode(_reference_greedy(backend, chat, 6), skip_special_tokens=True).strip()
        assert reply == want
    # order of the chats does not change any reply (rows are grouped by length internally)
    assert backend.generate_many(CHATS[::-1], max_tokens=6, temperature=0.0, seed=0) == replies[::-1]


def test_sampling_is_seeded_and_per_row_temperatures_apply(backend):
    temps = [1.2, 1.3, 1.2, 1.4]
    a = backend.generate_many(CHATS, max_tokens=8, temperature=temps, seed=5)
    assert a == backend.generate_many(CHATS, max_tokens=8, temperature=temps, seed=5)
    assert a != backend.generate_many(CHATS, max_tokens=8, temperature=temps, seed=6)
    with pytest.raises(ValueError):
        backend.generate_many(CHATS, max_tokens=4, temperature=[1.2], seed=0)


def test_non_finite_logits_end_the_row_instead_of_crashing(backend):
    with torch.no_grad():
        next(p for n, p in backend.model.named_parameters() if "lm_head" in n or "embed_tokens" in n).fill_(float("nan"))
    assert backend.generate_many(CHATS[:2], max_tokens=4, temperature=[1.5, 1.5], seed=0) == ["", ""]


def test_packed_batch_scores_exactly_like_the_padded_one(backend):
    tok, exs = backend.tokenizer, _examples()
    padded = backend.tokens.batch(tok, exs, 48)
    packed = pack_rows([backend.tokens.chat(tok, ex.messages, 48) for ex in exs])
    assert packed["input_ids"].shape[1] == int(padded["attention_mask"].sum()) < padded["input_ids"].size
    assert int(packed["n_tokens"]) == int(padded["n_tokens"])
    with torch.no_grad():
        s_pad, n_pad = backend._nll_sum(backend.model, padded)
        s_pack, n_pack = backend._nll_sum(backend.model, packed)
    assert n_pack == n_pad > 0
    assert float(s_pack) == pytest.approx(float(s_pad), rel=1e-5)  # attention never crosses chats


def test_packed_and_padded_training_follow_the_same_trajectory(tiny_model_dir, tmp_path):
    cfg = TrainConfig(iters=3, batch_size=3, lr=1e-2, warmup=0, max_seq_len=48, seed=0)
    batches = build_batches(_examples(), [], [], iters=3, batch_size=3, replay_fraction=0.0, seed=0)
    runs = []
    for pack in (True, False):
        be = TorchBackend(device="cpu", pack=pack)
        be.load(tiny_model_dir)
        runs.append(be.train(batches, cfg, tmp_path / f"a{pack}"))
    assert runs[0].tokens == runs[1].tokens
    assert runs[0].losses == pytest.approx(runs[1].losses, rel=1e-4)


def test_chats_are_scored_packed_in_one_pass_with_their_own_numbers(backend):
    exs = _examples()
    passes = []
    core, _ = backend._parts()
    hook = core.register_forward_hook(lambda mod, args, kwargs, out: passes.append(kwargs["input_ids"].shape[1]),
                                      with_kwargs=True)
    together = backend.nll_sums(exs)
    hook.remove()
    # the shared prefix (system prompt, user header) once, then every chat's rest in one packed pass
    lengths = [len(backend.tokens.chat(backend.tokenizer, ex.messages, backend.eval_max_len)[0]) for ex in exs]
    assert len(passes) == 2 and passes[0] > 10 and sum(passes) == sum(lengths) - (len(exs) - 1) * passes[0]
    alone = [backend.nll_sums([ex])[0] for ex in exs]
    assert [n for _, n in together] == [n for _, n in alone] and all(n > 0 for _, n in alone)
    assert [s for s, _ in together] == pytest.approx([s for s, _ in alone], rel=1e-5)  # attention stays within each chat
    assert backend.nll_sums(exs) == together  # deterministic
    total = sum(s for s, _ in together) / sum(n for _, n in together)
    assert backend.loss(exs) == pytest.approx(total)
    backend.score_tokens = 40  # a small budget: more passes, the same numbers up to rounding
    assert [s for s, _ in backend.nll_sums(exs)] == pytest.approx([s for s, _ in together], rel=1e-5)


def test_chats_are_tokenized_once(backend, monkeypatch):
    import circadia.backends.base as base

    calls = []
    real = base.tokenize_chat
    monkeypatch.setattr(base, "tokenize_chat", lambda *a, **k: calls.append(1) or real(*a, **k))
    exs = _examples(3)
    backend.nll_sums(exs)
    backend.nll_sums(exs)
    assert len(calls) == 3


def test_adapter_swap_keeps_the_base_in_memory(backend, tiny_model_dir, tmp_path, monkeypatch):
    exs = _examples(3)
    base_loss = backend.loss(exs)
    cfg = TrainConfig(iters=2, batch_size=2, lr=5e-2, warmup=0, max_seq_len=48, seed=0)
    backend.train(build_batches(exs, [], [], iters=2, batch_size=2, replay_fraction=0.0, seed=0), cfg, tmp_path / "a")
    trained = backend.loss(exs)
    assert trained != base_loss

    import transformers

    loads = []
    real = transformers.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: loads.append(a) or real(*a, **k))
    backend.load(tiny_model_dir)  # back to the bare base: the LoRA layers go, nothing is read from disk
    assert backend.loss(exs) == base_loss and not loads
    backend.load(tiny_model_dir, tmp_path / "a")
    assert backend.loss(exs) == pytest.approx(trained, abs=1e-6) and not loads
    fresh = TorchBackend(device="cpu")
    fresh.load(tiny_model_dir, tmp_path / "a")
    assert fresh.loss(exs) == pytest.approx(trained, abs=1e-6) and loads


def test_dtype_knob():
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("auto", "cuda:0") == "bfloat16" and resolve_dtype("auto", "mps") == "bfloat16"
    assert resolve_dtype("float32", "cuda") == "float32"
    with pytest.raises(ValueError, match="dtype"):
        resolve_dtype("fp8", "cpu")
    assert TorchBackend(device="cpu").dtype == torch.float32
