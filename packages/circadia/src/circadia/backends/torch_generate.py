"""Batched generation for the torch backend: one shared-prefix prefill, then a KV-cached decode loop.

Every harness prompt and every dream prompt starts with the same chat-template tokens (the
system prompt, the role header, the dreamer's instructions). :func:`generate_tokens` runs that
common prefix through the model once, copies its keys and values to every row, prefills the
rows' own suffixes together (left-padded *between* prefix and suffix, masked out, with the
rows' true positions), and then decodes all rows one token per step from the cache until each
row has produced an end-of-turn token or ``max_new`` tokens. Padding therefore costs nothing
but the masked slots of the suffix block, and no token is computed twice.

Greedy rows (temperature 0) take the arg-max; sampled rows draw from ``softmax(logits / t)``
with their own temperature from one seeded ``torch.Generator`` (full vocabulary: no top-k, no
top-p, as the dreamer asks for). Non-finite logits (a broken adapter) never crash a night: NaN
becomes ``-inf`` and a row with nothing left to choose ends.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def common_prefix(rows: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix every row shares, leaving each row at least one token."""
    if not rows:
        return 0
    first, n = rows[0], min(len(r) for r in rows) - 1
    for i in range(max(n, 0)):
        t = first[i]
        if any(r[i] != t for r in rows):
            return i
    return max(n, 0)


def _pick(logits: torch.Tensor, temps: torch.Tensor, sample: bool, generator: torch.Generator | None,
          fallback: int) -> torch.Tensor:
    """Next token per row: arg-max where ``temps == 0``, a seeded draw at ``temps`` elsewhere."""
    logits = torch.nan_to_num(logits.float(), nan=float("-inf"), posinf=float("inf"))
    dead = torch.isneginf(logits).all(dim=-1)
    greedy = logits.argmax(dim=-1)
    if sample:
        t = temps.clamp(min=1e-6)[:, None]
        probs = torch.softmax(logits / t, dim=-1)
        probs = torch.where(torch.isfinite(probs), probs, torch.zeros_like(probs))
        probs[dead] = 1.0  # uniform over nothing useful; replaced by the fallback below
        drawn = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        greedy = torch.where(temps > 0, drawn, greedy)
    return torch.where(dead, torch.full_like(greedy, fallback), greedy)


@torch.inference_mode()
def generate_tokens(
    core,
    head,
    prompts: Sequence[Sequence[int]],
    *,
    max_new: int,
    temperatures: Sequence[float],
    eos_ids: set[int],
    pad_id: int,
    device: str | torch.device,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """New token ids (end-of-turn excluded) for each prompt.

    ``core`` is the decoder stack (``LlamaModel``-like: ``input_ids``, ``attention_mask``,
    ``position_ids``, ``past_key_values``, ``use_cache``; returns ``last_hidden_state``) and
    ``head`` the LM head. ``temperatures[i] == 0`` makes row ``i`` greedy.
    """

    rows = [list(map(int, p)) for p in prompts]
    if not rows or max_new <= 0:
        return [[] for _ in rows]
    if min(len(r) for r in rows) == 0:
        raise ValueError("generate_tokens: every prompt needs at least one token")
    b = len(rows)
    p = common_prefix(rows)
    if p == 0 and b > 1:  # nothing shared to attend to through the padding: one row at a time
        return [generate_tokens(core, head, [r], max_new=max_new, temperatures=[t], eos_ids=eos_ids, pad_id=pad_id,
                                device=device, generator=generator)[0] for r, t in zip(rows, temperatures)]
    temps = torch.tensor([float(t) for t in temperatures], device=device)
    sample = bool((temps > 0).any())
    fallback = min(eos_ids) if eos_ids else pad_id
    cache = new_cache(core)
    if p:
        core(input_ids=torch.tensor([rows[0][:p]], device=device), past_key_values=cache, use_cache=True,
             position_ids=torch.arange(p, device=device)[None])
    suffix = [r[p:] for r in rows]
    width = max(len(s) for s in suffix)
    att = torch.ones((b, p + width), dtype=torch.long)
    for i, s in enumerate(suffix):
        att[i, p : p + width - len(s)] = 0  # the suffix sits right-aligned; the slots before it are masked
    if b > 1 and _layers(cache) is not None:
        cache, logits = _prefill_packed(core, head, cache, suffix, p, width, device)
    else:
        if b > 1:
            cache.batch_repeat_interleave(b)
        logits = _prefill_padded(core, head, cache, suffix, p, width, att, pad_id, device)
    att = att.to(device)
    nxt = _pick(logits, temps, sample, generator, fallback)
    last = torch.tensor([p + len(s) - 1 for s in suffix], device=device)
    out: list[list[int]] = [[] for _ in range(b)]
    done = [False] * b
    for step in range(max_new):
        for i, tok in enumerate(nxt.tolist()):  # the one host sync per step
            if done[i]:
                continue
            if tok in eos_ids:
                done[i] = True
            else:
                out[i].append(tok)
        if all(done) or step == max_new - 1:
            break
        att = torch.cat([att, torch.ones((b, 1), dtype=att.dtype, device=device)], dim=1)
        last = last + 1
        hidden = core(input_ids=nxt[:, None], attention_mask=att, position_ids=last[:, None], past_key_values=cache,
                      use_cache=True).last_hidden_state
        nxt = _pick(head(hidden[:, -1]), temps, sample, generator, fallback)
    return out


def _prefill_padded(core, head, cache, suffix, p, width, att, pad_id, device) -> torch.Tensor:
    """The rows' suffixes as one left-padded batch after the (repeated) prefix cache; next-token logits."""
    b = len(suffix)
    ids = torch.full((b, width), int(pad_id), dtype=torch.long)
    pos = torch.full((b, width), p, dtype=torch.long)  # masked slots: any position will do
    for i, s in enumerate(suffix):
        ids[i, width - len(s):] = torch.tensor(s)
        pos[i, width - len(s):] = torch.arange(p, p + len(s))
    hidden = core(input_ids=ids.to(device), attention_mask=att.to(device), position_ids=pos.to(device),
                  past_key_values=cache, use_cache=True).last_hidden_state
    return head(hidden[:, -1])


def _prefill_packed(core, head, cache, suffix, p, width, device):
    """The rows' suffixes packed into one row after the prefix (no padding computed), then the
    cache laid out per row as the decode loop expects: prefix, masked slots, the row's suffix."""
    lengths = [len(s) for s in suffix]
    chat_of = np.repeat(np.arange(len(suffix)), lengths)
    ids = torch.tensor([[t for s in suffix for t in s]], device=device)
    pos = torch.tensor([[p + i for n in lengths for i in range(n)]], device=device)
    dtype = next(core.parameters()).dtype
    hidden = core(input_ids=ids, position_ids=pos, attention_mask=visible_mask(chat_of, p, dtype, device),
                  past_key_values=cache, use_cache=True).last_hidden_state
    ends = np.cumsum(lengths) - 1
    logits = head(hidden[0, torch.as_tensor(ends, device=device)])
    starts = ends - np.asarray(lengths) + 1
    index = np.concatenate([np.concatenate([np.arange(p), np.full(width - n, p + a), p + a + np.arange(n)])
                            for a, n in zip(starts, lengths)])
    take = torch.as_tensor(index, device=device)
    laid = new_cache(core)
    for li, layer in enumerate(_layers(cache)):
        keys, values = layer
        shape = (len(suffix), keys.shape[1], p + width, keys.shape[-1])
        laid.update(keys[0].index_select(1, take).view(keys.shape[1], len(suffix), p + width, -1).transpose(0, 1).reshape(shape),
                    values[0].index_select(1, take).view(values.shape[1], len(suffix), p + width, -1).transpose(0, 1).reshape(shape),
                    li)
    return laid, logits


def _layers(cache):
    """(keys, values) per layer of a ``DynamicCache`` (batch 1), or None if this transformers keeps them elsewhere."""
    layers = getattr(cache, "layers", None)
    if layers and all(hasattr(x, "keys") and hasattr(x, "values") and isinstance(x.keys, torch.Tensor) for x in layers):
        return [(x.keys, x.values) for x in layers]
    return None


def new_cache(core):
    """An empty KV cache for ``core`` (``DynamicCache``; its constructor changed across transformers)."""
    from transformers import DynamicCache

    return DynamicCache(config=getattr(core, "config", None)) if _cache_takes_config() else DynamicCache()


def visible_mask(chat_of: np.ndarray, prefix: int, dtype: torch.dtype, device) -> torch.Tensor:
    """Additive attention mask ``[1, 1, S, prefix + S]`` of packed chats after a shared prefix:
    each token sees the prefix and the tokens of its own chat up to itself (0), nothing else (min)."""
    k = np.arange(len(chat_of))
    own = (chat_of[:, None] == chat_of[None, :]) & (k[None, :] <= k[:, None])
    seen = np.concatenate([np.ones((len(chat_of), prefix), dtype=bool), own], axis=1)
    mask = torch.zeros(seen.shape, dtype=dtype)
    mask[~torch.as_tensor(seen)] = torch.finfo(dtype).min
    return mask[None, None].to(device)


_TAKES_CONFIG: bool | None = None


def _cache_takes_config() -> bool:
    """``DynamicCache(config=...)`` exists from transformers 4.56 on; older ones take no argument."""
    global _TAKES_CONFIG
    if _TAKES_CONFIG is None:
        import inspect

        from transformers import DynamicCache

        _TAKES_CONFIG = "config" in inspect.signature(DynamicCache.__init__).parameters
    return _TAKES_CONFIG
