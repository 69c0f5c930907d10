"""One shrunk cell of every study of the mini profile, run in this process: ``python -m tests.determinism_cells WORKDIR OUT``.

tests/test_determinism.py runs this twice in fresh processes and compares the metrics: same seed,
same CPU, identical metrics (timings live in the record's ``timings``, never in ``metrics``). Each
cell is the study's most involved variant with its config made small (``SHRINK``, deep-merged over
params.yaml; the study's contract still checks every key, so a renamed key fails loudly here).
Artifacts are built once into WORKDIR by their own entries (the mini configs); the LLM is
circadia's tiny random model instead of the 135M one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from circadian_core.config import deep_merge
from circadian_core.record import read_record
from circadian_core.runner import run_cell
from pipelines.dag import Profile, load_profile

# study -> (variant, config overrides that keep one cell to seconds on one core)
SHRINK: dict[str, tuple[str, dict[str, Any]]] = {
    "cpc_toy": ("circadian", {"epochs": 2, "task": {"n_train_per_class": 60, "n_test_per_class": 60}}),
    "cpc_shift": ("strength-circadian", {"epochs_a": 2, "epochs_b": 3}),
    "heads": ("circadian", {"epochs": 2}),
    "heads_ablation": (None, {"epochs": 2}),  # None: the study's first variant
    "plastic": ("plastic-brain", {"curriculum": {"steps": [12, 12, 12], "eval_every": 6},
                                  "plastic": {"block": {"hidden_dim": 64}, "memory_size": 200}}),
    "hal": ("sleep", {"scenarios": ["task"], "memory": {"capacity": 40, "replay_n": 8},
                      "wake": {"epochs": 1}, "rem": {"steps": 1, "batch_size": 8}}),
    "hal_seqcl": ("hal-200", {"memory": {"capacity": 40, "replay_n": 8}, "wake": {"epochs": 1},
                              "rem": {"steps": 1, "batch_size": 8}}),
    "circadia": ("full", {"nights": 1, "base_eval": None,
                          "night": {"embedder": "hashing",
                                    "train": {"iters": 1, "batch_size": 2, "max_seq_len": 48},
                                    "dreams": {"bursts": 1, "per_burst": 1, "max_tokens": 4},
                                    "eval": {"harness_per_category": 1, "harness_max_tokens": 2, "old_core_items": 1}}}),
}
TINY_LLM = "smollm2_hf"


def cell(profile: Profile, study: str) -> tuple[str, dict[str, Any]]:
    """The (variant, shrunk config) of ``study``'s determinism cell."""
    variant, shrink = SHRINK.get(study, (None, {}))
    spec = profile.studies[study]
    variant = variant or next(iter(spec.variants))
    return variant, deep_merge(spec.config(variant), shrink)


def artifacts(profile: Profile, workdir: Path) -> dict[str, Path]:
    """Every artifact the mini studies need, built into ``workdir`` (once; reused by the second run)."""
    from pipelines.scripts.build_artifact import build

    built: dict[str, Path] = {}
    for name, art in profile.artifacts.items():
        out = workdir / art.out
        if name == TINY_LLM:
            if not out.exists():
                from circadia.models.tiny import make_tiny_model

                make_tiny_model(out, seed=0)
        elif not out.exists() and not name.startswith("circadia"):
            import os

            cwd = Path.cwd()
            os.chdir(workdir)
            try:
                build(profile, art, "cpu")
            finally:
                os.chdir(cwd)
        built[name] = out
    return built


def main(workdir: str, out: str) -> int:
    profile = load_profile("mini")
    work = Path(workdir)
    arts = artifacts(profile, work)
    metrics: dict[str, Any] = {}
    for study, spec in profile.studies.items():
        variant, config = cell(profile, study)
        seed = spec.seeds[0]
        record = run_cell(spec.entry, config, study=study, variant=variant, seed=seed, device="cpu",
                          out=work / "runs" / f"{study}.json", workdir=work / "work" / study,
                          artifacts={n: arts[n] for n in spec.needs}, threads=1)
        written = read_record(work / "runs" / f"{study}.json")  # as aggregate reads it (NaN -> null)
        metrics[study] = {"variant": variant, "seed": seed, "metrics": written["metrics"],
                          "wall_s": record.timings["wall_s"]}
    Path(out).write_text(json.dumps(metrics, indent=1, sort_keys=True, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
