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

from circadian_core.config import ConfigError, from_dict
from circadian_core.record import StudyResult
from circadian_vision.features import FeatureSpec, load_features, load_images, resolve_backbone
from circadian_vision.heads import HEADS, evaluate, fit, inference_latency, make_head
from circadian_vision.heads.backprop import BackpropConfig, BackpropHead


@dataclasses.dataclass
class HeadsConfig:
    head: str = "predictive_coding"  # backprop | predictive_coding | circadian
    features: str = "digits_features"  # the feature-cache artifact (listed under the study's needs)
    epochs: int = 20
    batch_size: int = 32
    standardize: bool = True  # z-score features with training-split statistics
    holdout_fraction: float = 0.1  # slice of the training data no head trains on (rollback guard)
    eval_batch: int = 4096
    latency_batch: int = 256
    latency_repeats: int = 30
    backprop: dict[str, Any] = dataclasses.field(default_factory=dict)
    predictive_coding: dict[str, Any] = dataclasses.field(default_factory=dict)
    circadian: dict[str, Any] = dataclasses.field(default_factory=dict)
    finetune_source: dict[str, Any] | None = None  # FeatureSpec of images + backbone for finetuning
    threads: int = 1  # CPU threads of this cell: heads are small matmuls, and spare cores run other cells


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
    if cfg.features not in artifacts:
        raise ConfigError(
            f"heads: feature cache {cfg.features!r} is not among this study's needs "
            f"({', '.join(artifacts) or 'none'}); add it under `needs` in params.yaml"
        )
    dev = torch.device(device)
    if dev.type == "cpu":
        torch.set_num_threads(cfg.threads)
    fs = load_features(artifacts[cfg.features])
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

    metrics: dict[str, float] = {
        "accuracy": final["accuracy"],
        "cross_entropy": final["cross_entropy"],
        "train_sps": timing["train_sps"],
        **latency,
        "params": float(head.param_count()),
        "params_start": float(params_start),
    }
    if finetune:
        metrics["backbone_params"] = float(sum(p.numel() for p in head.backbone.parameters()))
    stats = head.stats()
    metrics.update(stats)
    info: dict[str, Any] = {
        "features": {"key": fs.key, "spec": fs.spec, "extract": fs.info, "cache_bypassed": finetune},
        "split": {"train": len(train_idx), "holdout": len(hold_idx), "test": len(y_te)},
        "events": head.events,
        "timings": {"train_s": timing["train_s"], "train_eval_s": wall_train,
                    **{k: v for k, v in stats.items() if k.endswith("_s")}},
    }
    return StudyResult(metrics=metrics, history=history, info=info)
