"""Helpers for testing circadia (and code built on it): fast configs for the tiny model, file hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

from circadia.config import night_config


def tiny_night_config(model_dir, **over):
    """A night config that runs in a few seconds on the tiny model."""
    base = {
        "model": str(model_dir),
        "device": "cpu",
        "store": "numpy",
        "embedder": "hashing",
        "train": {"iters": 3, "batch_size": 2, "lr": 1e-3, "warmup": 1, "max_seq_len": 96},
        "dreams": {"bursts": 1, "per_burst": 2, "max_tokens": 8},
        "eval": {"harness_per_category": 1, "harness_max_tokens": 4, "old_core_items": 2},
        "rollback": {"max_capability_drop": 1.0},
    }
    from circadian_core.config import deep_merge

    return night_config(deep_merge(base, over))


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file below ``root`` (relative path -> hash)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def write_log(path: Path, turns: list[tuple[str, str]]) -> Path:
    import json

    with open(path, "w") as fh:
        for i, (u, a) in enumerate(turns):
            fh.write(json.dumps({"id": f"{path.stem}-{i}", "messages": [{"role": "user", "content": u}, {"role": "assistant", "content": a}]}) + "\n")
    return path
