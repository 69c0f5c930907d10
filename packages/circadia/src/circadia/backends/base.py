"""The backend interface every circadia backend implements, and the code they all share.

Both backends (torch+peft and MLX) get their data from the same functions here so that they see
identical tokens, masks, batch order and learning rates:

- :func:`tokenize_chat` renders one chat with the tokenizer's chat template and marks the
  assistant tokens (the only ones trained on and scored);
- :func:`collate` pads a list of examples into right-padded 2-D ``input_ids`` / ``loss_mask`` /
  ``attention_mask`` numpy arrays;
- :func:`lr_at` is the learning-rate schedule (linear warmup, cosine decay);
- :func:`masked_nll_reduction` documents the loss: mean NLL per masked token over the whole batch.

Batches of :class:`Example` (memories + dreams + replay, seeded) come from
:func:`circadia.sleep.batches.build_batches`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

ROLES = ("system", "user", "assistant")
EVAL_MAX_LEN = 1024  # Backend.loss truncates every chat to this many tokens, whatever training used
SOURCES = ("memory", "dream", "replay", "heldout")


@dataclass
class Example:
    """One chat: ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``."""

    messages: list[dict[str, str]]
    source: str = "memory"  # memory | dream | replay | heldout
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"messages": self.messages, "source": self.source, **({"meta": self.meta} if self.meta else {})}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Example:
        return cls(messages=list(obj["messages"]), source=obj.get("source", "memory"), meta=dict(obj.get("meta") or {}))


@dataclass
class TrainConfig:
    """LoRA training hyper-parameters (peft's meaning: scale = lora_alpha / lora_rank).

    ``iters`` optimizer steps (one batch each); ``warmup`` linear-warmup steps; the LR then decays
    by a cosine to ``lr * min_lr_ratio`` at step ``iters - 1``. ``target_modules`` are leaf names
    of linear layers (``"q_proj"``, ``"v_proj"``, ...). ``grad_clip`` <= 0 disables clipping.
    """

    iters: int = 20
    batch_size: int = 4
    lr: float = 2e-5
    warmup: int = 2
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    max_seq_len: int = 256
    seed: int = 0
    grad_clip: float = 1.0
    weight_decay: float = 0.0
    min_lr_ratio: float = 0.0

    def __post_init__(self) -> None:
        self.target_modules = tuple(self.target_modules)
        if self.iters < 0 or self.batch_size < 1 or self.lora_rank < 1 or self.max_seq_len < 8:
            raise ValueError(f"TrainConfig: bad sizes {self}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig: lr must be a positive number, got {self.lr}")

    @property
    def lora_scale(self) -> float:
        return float(self.lora_alpha) / int(self.lora_rank)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d


@dataclass
class TrainReport:
    """What ``Backend.train`` returns. ``aborted_nan``: a non-finite loss/gradient stopped training
    and NO adapter was written."""

    losses: list[float]
    tokens: int
    seconds: float
    aborted_nan: bool
    lrs: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    adapter_dir: str | None = None
    weights_finite: bool = True  # every trained weight finite at the end (False: never accept it)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "tokens_per_s": self.tokens_per_s}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainReport:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in names})


StepHook = Callable[[int, int, float, float], None]
"""``on_step(step, total, loss, lr)``: called by ``Backend.train`` after every optimizer step."""


@runtime_checkable
class Backend(Protocol):
    """What a night calls on a backend (torch+peft and MLX implement all of it).

    ``loaded`` is ``(model_dir, adapter_dir)`` while the weights in memory are exactly that
    base and adapter, None once training changed them; a night sets it when it renames the
    adapter it just trained (the weights are then exactly the saved adapter's) and skips
    ``load`` when it already matches.
    """

    name: str
    loaded: tuple[str, str | None] | None
    tokenizer: Any  # the transformers tokenizer of the loaded model (chat template, token ids)
    eval_max_len: int  # loss() and nll_sums() cut every chat to this many tokens

    def load(self, model_dir: Path, adapter_dir: Path | None = None) -> None: ...

    def generate(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, seed: int) -> str: ...

    def generate_many(self, chats: Sequence[list[dict[str, str]]], *, max_tokens: int,
                      temperature: float | Sequence[float], seed: int) -> list[str]:
        """Replies to ``chats`` (one temperature, or one per chat; 0 = greedy), seeded."""
        ...

    def nll_sums(self, examples: Sequence[Example]) -> list[tuple[float, int]]:
        """(summed NLL, assistant tokens) of each example (one number per chat: cacheable per chat)."""
        ...

    def loss(self, examples: list[Example]) -> float: ...  # mean NLL per assistant token

    def train(self, batches: list[list[Example]], cfg: TrainConfig, out_dir: Path, *,
              on_step: StepHook | None = None) -> TrainReport: ...

    def merge(self, adapter_dir: Path, out_dir: Path) -> None: ...


# --------------------------------------------------------------------------- registry

BACKENDS: dict[str, str] = {
    "torch": "circadia.backends.torch_backend:TorchBackend",
    "mlx": "circadia.backends.mlx_backend:MLXBackend",
}


def backend_class(name: str) -> type:
    """The backend class registered as ``name`` (imported on first use: mlx is never imported
    unless asked for)."""
    from circadian_core.runner import resolve_entry

    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")
    try:
        return resolve_entry(BACKENDS[name])
    except ImportError as err:
        extra = " (pip install 'circadia[mlx]')" if name == "mlx" else ""
        raise ImportError(f"backend {name!r} needs a package that is not installed: {err}{extra}") from err


def make_backend(name: str, **kwargs: Any) -> Backend:
    """Instantiate backend ``name`` (``"torch"`` or ``"mlx"``) with constructor ``kwargs``."""
    return backend_class(name)(**kwargs)


def register_backend(name: str, target: str) -> None:
    """Register ``"package.module:Class"`` as backend ``name``."""
    BACKENDS[name] = target


# --------------------------------------------------------------------------- chats -> tokens


def validate_messages(messages: Sequence[dict[str, str]], *, where: str = "chat") -> list[dict[str, str]]:
    """Check a chat's shape; returns a clean copy (only role/content). Raises ValueError naming the problem."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError(f"{where}: messages must be a non-empty list of {{role, content}} dicts")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"{where}: message {i} must be a dict with 'role' and 'content', got {m!r}")
        if m["role"] not in ROLES:
            raise ValueError(f"{where}: message {i} has role {m['role']!r}; roles are {ROLES}")
        if not isinstance(m["content"], str):
            raise ValueError(f"{where}: message {i} content must be a string")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _render(tokenizer, messages, *, add_generation_prompt: bool) -> str:
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt)
    if not isinstance(text, str):  # pragma: no cover - very old tokenizers
        raise TypeError("tokenizer.apply_chat_template(tokenize=False) must return a string")
    return text


def assistant_spans(tokenizer, messages: Sequence[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered chat and the character spans of every assistant reply (incl. its end-of-turn).

    The span of assistant message ``i`` runs from the end of the rendered prefix ``messages[:i]``
    with the generation prompt to the end of the rendered ``messages[:i+1]``: exactly what the
    model would have to generate, end-of-turn token included (so it learns to stop).
    """
    messages = list(messages)
    full = _render(tokenizer, messages, add_generation_prompt=False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = _render(tokenizer, messages[:i], add_generation_prompt=True) if i else ""
        upto = _render(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not full.startswith(upto) or not upto.startswith(prefix):
            raise ValueError(
                "the tokenizer's chat template does not render chats prefix-consistently; "
                "cannot locate assistant tokens"
            )
        spans.append((len(prefix), len(upto)))
    return full, spans


def tokenize_chat(tokenizer, messages: Sequence[dict[str, str]], max_seq_len: int | None = None) -> tuple[list[int], list[int]]:
    """``(input_ids, loss_mask)`` of one chat rendered with the tokenizer's chat template.

    ``loss_mask[t] == 1`` when token ``t`` belongs to an assistant reply (its text and end-of-turn
    marker): a target, predicted from tokens ``< t``. Everything else (system, user, role headers)
    is context only. Longer chats are cut from the left (:func:`reply_window`): the last reply
    is kept and the context before it shortened, so a long paste never leaves nothing to learn.
    """
    text, spans = assistant_spans(tokenizer, validate_messages(messages))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offsets = enc["offset_mapping"]
    mask = [0] * len(ids)
    for t, (start, end) in enumerate(offsets):
        if end <= start:
            continue
        for s0, s1 in spans:
            if s0 <= start < s1:
                mask[t] = 1
                break
    if max_seq_len is not None and len(ids) > max_seq_len:
        start, end = reply_window(mask, max_seq_len)
        ids, mask = ids[start:end], mask[start:end]
    return ids, mask


def reply_window(mask: Sequence[int], max_len: int) -> tuple[int, int]:
    """``(start, end)`` of the ``max_len`` tokens kept of a longer chat: the window starts as far
    left as it can while still reaching the start of the last assistant reply plus as much of the
    reply as fits (context is cut from the left, the reply from the right only when it alone is
    longer than ``max_len``)."""
    n = len(mask)
    last = n - 1
    while last >= 0 and not mask[last]:
        last -= 1
    if last < 0:  # no reply at all: keep the end
        return max(0, n - max_len), n
    first = last
    while first > 0 and mask[first - 1]:
        first -= 1
    end = min(n, first + max_len)
    return max(0, end - max_len), end


class TokenCache:
    """Token ids of chats, tokenized once: a night scores the same held-out chats and harness
    prompts before and after training, and trains on repeated examples. Bounded (LRU)."""

    def __init__(self, size: int = 4096):
        self.size = int(size)
        self._rows: OrderedDict[str, Any] = OrderedDict()

    def _get(self, key: str, make: Callable[[], Any]) -> Any:
        if key in self._rows:
            self._rows.move_to_end(key)
            return self._rows[key]
        value = self._rows[key] = make()
        if len(self._rows) > self.size:
            self._rows.popitem(last=False)
        return value

    def chat(self, tokenizer, messages: Sequence[dict[str, str]], max_seq_len: int | None) -> tuple[list[int], list[int]]:
        """:func:`tokenize_chat`, cached."""
        key = json.dumps(["chat", max_seq_len, list(messages)], sort_keys=True)
        return self._get(key, lambda: tokenize_chat(tokenizer, messages, max_seq_len))

    def prompt(self, tokenizer, messages: Sequence[dict[str, str]]) -> list[int]:
        """The generation prompt (chat template + assistant header) of ``messages``, cached."""
        def make() -> list[int]:
            text = _render(tokenizer, validate_messages(messages, where="generate"), add_generation_prompt=True)
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])

        return self._get(json.dumps(["prompt", list(messages)], sort_keys=True), make)

    def batch(self, tokenizer, examples: Sequence[Example], max_seq_len: int) -> dict[str, np.ndarray]:
        """:func:`collate` from cached token ids."""
        return collate(tokenizer, examples, max_seq_len, rows=[self.chat(tokenizer, ex.messages, max_seq_len) for ex in examples])


def pad_id_of(tokenizer) -> int:
    pid = tokenizer.pad_token_id
    if pid is None:
        pid = tokenizer.eos_token_id
    return int(pid if pid is not None else 0)


def collate(tokenizer, examples: Sequence[Example], max_seq_len: int,
            rows: Sequence[tuple[list[int], list[int]]] | None = None) -> dict[str, np.ndarray]:
    """Right-padded numpy batch of ``examples``.

    Returns ``input_ids`` (int64, B x T), ``loss_mask`` (float32, B x T; 1 = assistant target
    token), ``attention_mask`` (int64; 1 = real token) and ``n_tokens`` (int64 scalar array:
    real, non-pad tokens). T is the longest row (at most ``max_seq_len``). ``rows``: the
    examples' ``tokenize_chat`` results when already known (:class:`TokenCache`).
    """
    if not examples:
        raise ValueError("collate: empty batch")
    if rows is None:
        rows = [tokenize_chat(tokenizer, ex.messages, max_seq_len) for ex in examples]
    width = max(len(ids) for ids, _ in rows)
    pad = pad_id_of(tokenizer)
    input_ids = np.full((len(rows), width), pad, dtype=np.int64)
    loss_mask = np.zeros((len(rows), width), dtype=np.float32)
    attention = np.zeros((len(rows), width), dtype=np.int64)
    for i, (ids, mask) in enumerate(rows):
        input_ids[i, : len(ids)] = ids
        loss_mask[i, : len(ids)] = mask
        attention[i, : len(ids)] = 1
    loss_mask[:, 0] = 0  # the first token has nothing before it to be predicted from
    return {
        "input_ids": input_ids,
        "loss_mask": loss_mask,
        "attention_mask": attention,
        "n_tokens": np.asarray(int(attention.sum()), dtype=np.int64),
    }


def masked_nll_reduction(token_nll_sum: float, n_masked: float) -> float:
    """The loss convention: (sum of NLL over masked target tokens) / (number of masked tokens),
    over the whole batch (or over all batches for an evaluation) - not a mean of per-row means."""
    if n_masked <= 0:
        raise ValueError("no assistant tokens to score: every loss_mask is empty")
    return float(token_nll_sum) / float(n_masked)


# --------------------------------------------------------------------------- schedule


def lr_at(step: int, cfg: TrainConfig, total: int | None = None) -> float:
    """Learning rate at 0-based ``step``: linear warmup to ``cfg.lr`` over ``cfg.warmup`` steps
    (step 0 gets ``lr / warmup``), then cosine decay to ``cfg.lr * cfg.min_lr_ratio`` at the last
    step ``total - 1`` (``total`` defaults to ``cfg.iters``)."""
    total = cfg.iters if total is None else int(total)
    lr, floor = float(cfg.lr), float(cfg.lr) * float(cfg.min_lr_ratio)
    if cfg.warmup > 0 and step < cfg.warmup:
        return lr * (step + 1) / cfg.warmup
    span = max(1, total - 1 - cfg.warmup)
    progress = min(1.0, max(0.0, (step - cfg.warmup) / span))
    return floor + 0.5 * (lr - floor) * (1.0 + math.cos(math.pi * progress))
