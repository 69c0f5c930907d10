"""Feature cache: a frozen backbone's features, computed once per (dataset, backbone, weights, preprocessing).

Every head, seed and ablation then trains on the cached tensors instead of re-running the backbone
each step (the prototype's way). The cache's content key is the sha256 of a canonical description
of what determines the features: the dataset and its loader arguments, the backbone and the
identity of its weights (torchvision file name, or the sha256 of a backbone artifact), the
preprocessing (input size, normalization) and this module's format version.

* ``build_feature_artifact(config, *, out, device, artifacts)`` - the pipeline artifact entry
  (e.g. ``digits_features`` in ``mini``, ``cifar100_resnet50_imagenet`` in ``paper``).
* ``cached_features(spec, cache_dir)`` - the same outside the pipeline, reusing ``<key>.pt``.
* ``load_features(path)`` - a :class:`FeatureSet` (tensors + key + spec), with a clear error when
  the file is missing, foreign or was computed for another spec.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from circadian_core.config import ConfigError, from_dict
from circadian_core.datasets import ArrayDataset, load_dataset
from circadian_core.runner import require_artifact
from circadian_vision.backbones import Backbone, build_backbone, load_backbone, read_artifact

FORMAT = "circadian_vision.features/1"


@dataclasses.dataclass
class BackboneSpec:
    """``name``: resnet18 | resnet50 | an artifact name (``digits_cnn``) loaded with load_backbone."""

    name: str = "resnet18"
    weights: str = "random"  # random (random init, no download; also "none") | imagenet; ignored for artifacts
    image_size: int | None = None  # resize inputs to this square size (None: keep)
    seed: int = 0  # the random init's seed (weights: random)


@dataclasses.dataclass
class FeatureSpec:
    """What a feature cache is computed from (params.yaml ``artifacts.<name>.config``)."""

    dataset: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "digits"})
    backbone: BackboneSpec = dataclasses.field(default_factory=BackboneSpec)
    batch_size: int = 256


@dataclasses.dataclass
class FeatureSet:
    """Cached features of one dataset split (float32, CPU) and what they were computed from."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    key: str
    spec: dict[str, Any]
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0  # extraction wall time in this process; never saved (an artifact holds no timings)

    @property
    def feature_dim(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def load_images(dataset: dict[str, Any]) -> ArrayDataset:
    """The image dataset a spec names, by its name in ``circadian_core.datasets`` (``digits``,
    ``cifar10``, ``cifar100`` or any registered stand-in such as ``synthetic-cifar100``), with the
    spec's other keys as loader arguments: ``{"name": ..., **loader kwargs}``."""
    kwargs = dict(dataset)
    name = kwargs.pop("name", None)
    if not name:
        raise ConfigError("features: dataset needs a name, e.g. {name: cifar100, train_size: 20000}")
    data = load_dataset(name, **kwargs)
    if not isinstance(data, ArrayDataset):
        raise ConfigError(f"features: dataset {name!r} is a task sequence; use a train/test dataset (digits, cifar10, cifar100)")
    return data


def resolve_backbone(spec: BackboneSpec, artifacts: dict[str, Path] | None = None, device: str = "cpu") -> Backbone:
    """The frozen backbone of ``spec``: a torchvision ResNet or a backbone artifact by name."""
    artifacts = artifacts or {}
    if spec.name.startswith("resnet") and spec.name not in artifacts:
        return build_backbone(spec.name, spec.weights, image_size=spec.image_size, seed=spec.seed).freeze().to(device)
    # any other name is a backbone artifact (e.g. digits_cnn) the feature artifact lists under `needs`
    backbone = load_backbone(require_artifact(artifacts, spec.name, study="features", key="backbone.name"), device=device)
    backbone.image_size = spec.image_size
    return backbone


def content_key(dataset: dict[str, Any], backbone: Backbone) -> str:
    """sha256 of what determines the features (dataset, backbone identity, preprocessing, format)."""
    desc = {"format": FORMAT, "dataset": dataset, "backbone": backbone.identity()}
    return hashlib.sha256(json.dumps(desc, sort_keys=True, default=str).encode()).hexdigest()


def compute_features(
    spec: FeatureSpec | dict[str, Any],
    *,
    device: str = "cpu",
    artifacts: dict[str, Path] | None = None,
    backbone: Backbone | None = None,
    data: ArrayDataset | None = None,
    progress: bool = True,
) -> FeatureSet:
    """Run the frozen backbone once over the train and test images of ``spec``."""
    if isinstance(spec, dict):
        spec = from_dict(FeatureSpec, spec, where="features")
    data = data if data is not None else load_images(spec.dataset)
    backbone = backbone if backbone is not None else resolve_backbone(spec.backbone, artifacts, device)
    key = content_key(spec.dataset, backbone)
    t0 = time.perf_counter()
    x_train = _features(backbone, data.x_train, spec.batch_size, progress, "train")
    x_test = _features(backbone, data.x_test, spec.batch_size, progress, "test")
    seconds = time.perf_counter() - t0
    return FeatureSet(
        x_train=x_train,
        y_train=torch.as_tensor(np.asarray(data.y_train), dtype=torch.long),
        x_test=x_test,
        y_test=torch.as_tensor(np.asarray(data.y_test), dtype=torch.long),
        classes=list(data.classes),
        key=key,
        spec={
            "dataset": spec.dataset,
            "backbone": backbone.identity(),
            "batch_size": spec.batch_size,
            "source": dataclasses.asdict(spec),  # to rebuild images + backbone (fine-tuning bypasses the cache)
        },
        # no timings in the artifact: its bytes must not change from one build to the next (the
        # extraction speed is measured by benchmarks/heads.py and printed in the build log)
        info={"images": len(data.y_train) + len(data.y_test), "device": device},
        seconds=seconds,
    )


def _features(backbone: Backbone, images: np.ndarray, batch_size: int, progress: bool, what: str) -> torch.Tensor:
    from tqdm.auto import tqdm

    chunks = []
    starts = range(0, len(images), batch_size)
    for i in tqdm(starts, desc=f"features {backbone.name} {what}", disable=not progress or len(starts) < 4):
        chunks.append(backbone.features(images[i : i + batch_size], batch_size=batch_size))
    return torch.cat(chunks) if chunks else torch.empty(0, backbone.feature_dim)


def save_features(fs: FeatureSet, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, **dataclasses.asdict(fs)}
    blob.pop("seconds")
    from circadian_core.artifacts import save_torch  # bytes independent of the (temporary) file name

    save_torch(blob, path)
    return path


def load_features(path: str | Path, *, expected_key: str | None = None) -> FeatureSet:
    """A saved :class:`FeatureSet`; ``expected_key`` guards against a cache made for another spec."""
    path = Path(path)
    blob = read_artifact(path, FORMAT, "feature cache", path.stem)
    blob.pop("format")
    fs = FeatureSet(**blob)
    if expected_key is not None and fs.key != expected_key:
        raise ValueError(
            f"{path} holds features with key {fs.key[:12]}..., expected {expected_key[:12]}... "
            "(different dataset, backbone, weights or preprocessing); delete it and rebuild"
        )
    return fs


def cached_features(
    spec: FeatureSpec | dict[str, Any],
    cache_dir: str | Path,
    *,
    device: str = "cpu",
    artifacts: dict[str, Path] | None = None,
    progress: bool = True,
) -> FeatureSet:
    """``cache_dir/<key>.pt`` if present (verified), else compute and store it."""
    if isinstance(spec, dict):
        spec = from_dict(FeatureSpec, spec, where="features")
    backbone = resolve_backbone(spec.backbone, artifacts, device)
    key = content_key(spec.dataset, backbone)
    path = Path(cache_dir) / f"{key}.pt"
    if path.exists():
        return load_features(path, expected_key=key)
    fs = compute_features(spec, device=device, artifacts=artifacts, backbone=backbone, progress=progress)
    save_features(fs, path)
    return fs


def build_feature_artifact(
    config: dict[str, Any], *, out: Path, device: str = "cpu", artifacts: dict[str, Path] | None = None
) -> None:
    """Pipeline artifact entry: compute the features of ``config`` (a :class:`FeatureSpec`) into ``out``."""
    spec = from_dict(FeatureSpec, config, where="features artifact config")
    fs = compute_features(spec, device=device, artifacts=artifacts)
    save_features(fs, out)
    print(
        f"features {fs.spec['backbone']['name']} on {spec.dataset.get('name')}: "
        f"train {tuple(fs.x_train.shape)}, test {tuple(fs.x_test.shape)}, key {fs.key[:12]}, "
        f"{fs.info['images'] / max(fs.seconds, 1e-9):.0f} images/s"
    )
