"""Study ``heads``: one head (backprop, predictive coding or circadian) trained on cached features.

One DAG cell = one (head or ablation variant, seed). The cell loads the feature cache it
``needs`` (a pipeline artifact), standardizes it with training statistics, holds out a
seeded, class-stratified slice of the TRAINING data (the circadian rollback guard decides on it;
every head trains without it, so all heads see the same data), trains for ``epochs`` and
records test accuracy and cross-entropy after every epoch, train samples/s, inference latency,
parameter counts, and for the circadian head its sleeps (splits, prunes, rollbacks, width).

With ``backprop.finetune: true`` the cache is bypassed: images are loaded and the backbone is
trained with the head (the spec of images and backbone is the cache's own, or ``finetune_source``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from circadian_core.config import ConfigError, bounded, from_dict
from circadian_core.contract import Contract, Metric
from circadian_core.record import StudyResult
from circadian_core.runner import require_artifact
from circadian_vision.features import FeatureSpec, load_features, load_images, resolve_backbone
from circadian_vision.heads import HEADS, evaluate, fit, inference_latency, make_head
from circadian_vision.heads.backprop import BackpropConfig, BackpropHead


@dataclasses.dataclass
class HeadsConfig:
    head: str = "predictive_coding"  # backprop | predictive_coding | circadian
    features: str = "digits_features"  # the feature-cache artifact (listed under the study's needs)
    epochs: int = bounded(20, low=1)
    batch_size: int = bounded(32, low=1)
    standardize: bool = True  # z-score features with training-split statistics
    holdout_fraction: float = bounded(0.1, low=0.0, high=0.99)  # training slice no head trains on (rollback guard)
    eval_batch: int = 4096
    latency_batch: int = 256
    latency_repeats: int = 30
    backprop: dict[str, Any] = dataclasses.field(default_factory=dict)
    predictive_coding: dict[str, Any] = dataclasses.field(default_factory=dict)
    circadian: dict[str, Any] = dataclasses.field(default_factory=dict)
    finetune_source: dict[str, Any] | None = None  # FeatureSpec of images + backbone for finetuning


@dataclasses.dataclass
class HeadsInfo:
    """``info`` of a heads record."""

    features: dict[str, Any] = dataclasses.field(default_factory=dict)  # key, spec, extract info, cache_bypassed
    split: dict[str, int] = dataclasses.field(default_factory=dict)  # train / holdout / test rows
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # the circadian head's sleeps


def _circ(name: str, meaning: str, unit: str = "count") -> Metric:
    return Metric(name, meaning + " (circadian head only; null for the others)", unit, nullable=True)


CONTRACT = Contract(
    "heads",
    version=2,
    settings=HeadsConfig,
    info=HeadsInfo,
    description="One head (backprop, predictive coding, circadian) trained on cached frozen-backbone features.",
    metrics=(
        Metric("accuracy", "test accuracy after the last epoch", "accuracy", higher_is_better=True),
        Metric("cross_entropy", "mean test cross-entropy after the last epoch", "nats", higher_is_better=False),
        Metric("params", "head parameters at the end", "count"),
        Metric("params_start", "head parameters at the start", "count"),
        Metric("backbone_params", "parameters of the fine-tuned backbone (null: frozen, cached)", "count", nullable=True),
        _circ("hidden_start", "hidden width at the start", "units"),
        _circ("hidden_end", "hidden width at the end", "units"),
        _circ("hidden_max", "largest hidden width reached", "units"),
        _circ("distinct_end", "units at the end whose incoming rows differ (cosine > 0.999 counted once)", "units"),
        _circ("sleeps", "sleeps run"),
        _circ("splits", "splits committed (not rolled back)"),
        _circ("prunes", "prunes committed (not rolled back)"),
        _circ("rollbacks", "sleeps undone by the rollback guard"),
        _circ("split_attempts", "splits tried, rolled back or not"),
        _circ("prune_attempts", "prunes tried, rolled back or not"),
        _circ("skipped", "sleeps skipped by the budget's progress windows"),
    ),
)
CIRCADIAN_METRICS = tuple(m.name for m in CONTRACT.metrics if m.nullable and m.name != "backbone_params")


def holdout_split(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, holdout): a seeded class-stratified ``fraction`` of ``y`` held out."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"heads: holdout_fraction must be in [0, 1), got {fraction}")
    labels = y.cpu().numpy()
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(len(idx) * fraction))
        held.append(rng.choice(idx, size=k, replace=False))
    mask = np.zeros(len(labels), dtype=bool)
    if held:
        mask[np.concatenate(held)] = True
    return torch.from_numpy(np.flatnonzero(~mask)), torch.from_numpy(np.flatnonzero(mask))


def _standardize(x_train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean = x_train.mean(0, keepdim=True)
    std = x_train.std(0, keepdim=True).clamp_min(1e-6)
    return [(t - mean) / std for t in (x_train, *others)]


def _metrics(head: Any, final: dict[str, float], params_start: int, finetune: bool) -> dict[str, float | None]:
    """The record's metrics: deterministic values only (the circadian counters are null for other heads)."""
    stats = head.stats()
    return {
        "accuracy": final["accuracy"],
        "cross_entropy": final["cross_entropy"],
        "params": float(head.param_count()),
        "params_start": float(params_start),
        "backbone_params": float(sum(p.numel() for p in head.backbone.parameters())) if finetune else None,
        **{k: stats.get(k) for k in CIRCADIAN_METRICS},
    }


def run(
    config: dict[str, Any],
    *,
    seed: int,
    device: str = "cpu",
    workdir: Path | None = None,
    artifacts: dict[str, Path] | None = None,
) -> StudyResult:
    cfg = from_dict(HeadsConfig, config, where="heads")
    if cfg.head not in HEADS:
        raise ConfigError(f"heads: unknown head {cfg.head!r}; heads: {', '.join(HEADS)}")
    artifacts = artifacts or {}
    dev = torch.device(device)
    fs = load_features(require_artifact(artifacts, cfg.features, study="heads", key="features"))
    head_cfg = dict(getattr(cfg, cfg.head))
    finetune = cfg.head == "backprop" and bool(head_cfg.get("finetune", False))
    train_idx, hold_idx = holdout_split(fs.y_train, cfg.holdout_fraction, seed)
    featurize = None
    if finetune:  # bypass the cache: images in, backbone trained
        source = from_dict(FeatureSpec, cfg.finetune_source or fs.spec["source"], where="heads.finetune_source")
        images = load_images(source.dataset)
        backbone = resolve_backbone(source.backbone, artifacts, device)
        x_all = torch.as_tensor(np.asarray(images.x_train))
        x_tr, x_ho = x_all[train_idx].to(dev), x_all[hold_idx].to(dev)
        x_te = torch.as_tensor(np.asarray(images.x_test)).to(dev)
        featurize = backbone.preprocess
        bp_cfg = from_dict(BackpropConfig, head_cfg, where="heads.backprop")
        head = BackpropHead(backbone.feature_dim, fs.num_classes, bp_cfg, seed=seed, backbone=backbone)
    else:
        x_tr, x_ho, x_te = fs.x_train[train_idx], fs.x_train[hold_idx], fs.x_test
        if cfg.standardize:
            x_tr, x_ho, x_te = _standardize(x_tr, x_ho, x_te)
        x_tr, x_ho, x_te = x_tr.to(dev), x_ho.to(dev), x_te.to(dev)
        head = make_head(cfg.head, fs.feature_dim, fs.num_classes, head_cfg, seed=seed)
    y_tr, y_ho, y_te = fs.y_train[train_idx].to(dev), fs.y_train[hold_idx].to(dev), fs.y_test.to(dev)
    head = head.to(dev)
    if hasattr(head, "set_holdout"):
        head.set_holdout(x_ho, y_ho)
    params_start = head.param_count()

    history: dict[str, list[Any]] = {"epoch": [], "train_loss": [], "accuracy": [], "cross_entropy": [], "hidden": []}

    eval_batch = cfg.batch_size if finetune else cfg.eval_batch  # images through the backbone: small batches

    def on_epoch(epoch: int, loss: float) -> None:
        ev = evaluate(head, x_te, y_te, eval_batch, featurize)
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(loss)
        history["accuracy"].append(ev["accuracy"])
        history["cross_entropy"].append(ev["cross_entropy"])
        history["hidden"].append(getattr(head, "hidden_width", 0))

    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    timing = fit(head, x_tr, y_tr, epochs=cfg.epochs, batch_size=cfg.batch_size, generator=gen,
                 featurize=featurize, on_epoch=on_epoch)
    wall_train = time.perf_counter() - t0
    if history["epoch"]:  # the last epoch's evaluation is the final one
        final = {"accuracy": history["accuracy"][-1], "cross_entropy": history["cross_entropy"][-1]}
    else:
        final = evaluate(head, x_te, y_te, eval_batch, featurize)
    x_lat = featurize(x_te[: cfg.latency_batch]) if featurize is not None else x_te
    latency = inference_latency(head, x_lat, batch_size=cfg.latency_batch, repeats=cfg.latency_repeats)

    metrics = _metrics(head, final, params_start, finetune)
    info = HeadsInfo(
        features={"key": fs.key, "spec": fs.spec, "extract": fs.info, "cache_bypassed": finetune},
        split={"train": len(train_idx), "holdout": len(hold_idx), "test": len(y_te)},
        events=head.events,
    )
    # wall-clock measurements: timings, never metrics (a rerun with the same seed gives the same metrics)
    timings = {"train_s": timing["train_s"], "train_sps": timing["train_sps"], "train_eval_s": wall_train,
               **latency, **head.timings()}
    return StudyResult(metrics=metrics, history=history, info=dataclasses.asdict(info), timings=timings)
