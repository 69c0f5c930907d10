"""Evaluation before and after each night.

- held-out chat loss: mean NLL per assistant token on chats that are NEVER trained on (a fixed,
  hash-based share of every day's turns). The prototype measured loss on the chats it had just
  trained on, which rewards memorisation; this is the fix.
- old-core loss: the same on the ``eval`` split of the shipped general set (forgetting).
- capability harness: greedy replies to fixed prompts in seven categories, scored by
  deterministic rules (numbers, keywords, JSON, case, length).
- retrieval recall: does the store return the turn that holds a fact (probe answers and the
  stored turns themselves) among its top k?
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from circadia.backends.base import Backend

HARNESS_CATEGORIES: tuple[str, ...] = ("math", "reasoning", "factual", "format", "summarization", "style", "context")
"""The capability harness's categories (``harness.jsonl``), in the order tables show them."""

# ----------------------------------------------------------------------------- held-out split


def is_heldout(turn_id: str, fraction: float) -> bool:
    """Deterministic, seed-free: the same turn is held out in every run and every night."""
    if fraction <= 0:
        return False
    h = int.from_bytes(hashlib.sha256(("heldout:" + turn_id).encode()).digest()[:8], "big")
    return (h % 10_000) < round(fraction * 10_000)


# ----------------------------------------------------------------------------- scorers

_NUM = re.compile(r"[-+]?\d+(?:\.\d+)?")


def _words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def score(reply: str, scorer: dict[str, Any]) -> bool:
    """Deterministic pass/fail of ``reply`` under ``scorer`` (see harness.jsonl for the kinds)."""
    kind = scorer["type"]
    text = reply.strip()
    low = text.lower()
    ok: bool
    if kind == "number":
        m = _NUM.search(text.replace(",", ""))
        ok = m is not None and abs(float(m.group()) - float(scorer["value"])) < 1e-9
    elif kind == "contains_any":
        hay = text if scorer.get("case_sensitive") else low
        vals = scorer["values"] if scorer.get("case_sensitive") else [v.lower() for v in scorer["values"]]
        ok = any(v in hay for v in vals) and not any(f.lower() in low for f in scorer.get("forbid", []))
    elif kind == "yes_no":
        m = re.search(r"\b(yes|no)\b", low)
        ok = m is not None and m.group(1) == scorer["value"]
    elif kind == "comma_list":
        first = text.splitlines()[0] if text else ""
        items = [x.strip() for x in first.split(",") if x.strip()]
        ok = len(items) >= scorer.get("min_items", 2) and all(len(x.split()) <= 3 for x in items)
    elif kind == "json_key":
        ok = False
        for m in re.finditer(r"\{", text):
            try:
                obj, _ = json.JSONDecoder().raw_decode(text[m.start():])
            except json.JSONDecodeError:
                continue
            ok = isinstance(obj, dict) and obj.get(scorer["key"]) == scorer["value"]
            break
    elif kind == "lowercase":
        ok = bool(text) and text == low and any(v in low for v in scorer.get("contains_any", [""]))
    elif kind == "max_words":
        ok = 0 < len(_words(text)) <= scorer["n"]
    elif kind == "starts_with":
        ok = low.lstrip("\"' ").startswith(scorer["value"].lower())
    else:
        raise ValueError(f"unknown scorer type {kind!r}")
    if ok and "max_words" in scorer and kind != "max_words":
        ok = len(_words(text)) <= scorer["max_words"]
    return ok


def select_harness(items: Sequence[dict], per_category: int | None) -> list[dict]:
    """The first ``per_category`` items of each category (all when None), in file order."""
    if per_category is None:
        return list(items)
    taken: dict[str, int] = defaultdict(int)
    out = []
    for it in items:
        if taken[it["category"]] < per_category:
            taken[it["category"]] += 1
            out.append(it)
    return out


def generate_all(backend: Backend, chats: list[list[dict[str, str]]], *, max_tokens: int, temperature: float | list[float],
                 seed: int) -> list[str]:
    """Replies to ``chats`` (``Backend.generate_many``: one temperature, or one per chat)."""
    return list(backend.generate_many(chats, max_tokens=max_tokens, temperature=temperature, seed=seed))


def run_harness(backend, items: Sequence[dict], *, max_tokens: int = 32, seed: int = 0) -> dict[str, Any]:
    """Greedy replies to every item; pass rate overall and per category, and each reply."""
    replies = generate_all(backend, [it["messages"] for it in items], max_tokens=max_tokens, temperature=0.0, seed=seed)
    per_cat: dict[str, list[bool]] = defaultdict(list)
    rows = []
    for it, reply in zip(items, replies):
        ok = score(reply, it["scorer"])
        per_cat[it["category"]].append(ok)
        rows.append({"id": it["id"], "category": it["category"], "pass": ok, "reply": reply})
    n = sum(len(v) for v in per_cat.values())
    return {
        "pass_rate": sum(sum(v) for v in per_cat.values()) / n if n else float("nan"),
        "per_category": {c: sum(v) / len(v) for c, v in sorted(per_cat.items())},
        "items": rows,
    }


# ----------------------------------------------------------------------------- recall


def probe_recall(store, probes: Sequence[dict], k: int) -> dict[str, Any]:
    """Share of probes whose answer string appears in one of the top-``k`` retrieved turns."""
    if not probes:
        return {"recall": None, "n": 0, "hits": []}
    hits = []
    for p in probes:
        found = store.query(p["question"], k) if store is not None else []
        hits.append(any(p["answer"].lower() in h.text.lower() for h in found))
    return {"recall": sum(hits) / len(hits), "n": len(hits), "hits": hits}


def self_recall(store, queries: Sequence[tuple[str, str]], k: int) -> dict[str, Any]:
    """Share of stored turns (id, user text) found among the top ``k`` when queried by their user text."""
    if not queries or store is None:
        return {"recall": None, "n": len(queries)}
    found = [any(h.id == tid for h in store.query(q, k)) for tid, q in queries]
    return {"recall": sum(found) / len(found), "n": len(found)}
