"""Frozen feature extractors: torchvision ResNets and the in-pipeline ``digits_cnn``.

A :class:`Backbone` maps images to ``(N, feature_dim)`` float32 features and carries its own
preprocessing, so every caller (feature cache, on-the-fly training, the plastic-brain models)
turns images into features the same way.

Public API (kept stable; the plastic-brain package builds on it):

* ``build_backbone(name, weights="random")`` - ``resnet18`` / ``resnet50`` from torchvision with
  ``weights`` ``random`` (random init, seeded, nothing downloaded; ``none`` is the same) or ``imagenet`` (downloaded once by torchvision into its hub cache, sha256
  checked; offline a :class:`BackboneUnavailableError` names the file to place by hand and the
  ``mini`` alternative).
* ``build_digits_backbone(config, *, out, device, artifacts)`` - the pipeline artifact
  ``digits_cnn``: a small CNN trained on the first Split-Digits task, then frozen and saved.
* ``load_backbone(path, device="cpu")`` - a saved backbone file -> frozen :class:`Backbone`
  (eval mode, ``requires_grad=False``). Input: digits images ``(N, 8, 8)`` or ``(N, 1, 8, 8)``,
  floats in [0, 1]; output ``(N, feature_dim)``.
* ``save_backbone(backbone, path, **meta)`` - the inverse of ``load_backbone``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from circadian_core.config import ConfigError, from_dict
from circadian_core.datasets.download import ChecksumError, file_digest

FORMAT = "circadian_vision.backbone/1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESNETS = {"resnet18": 512, "resnet50": 2048}
WEIGHTS = ("random", "none", "imagenet")  # random and none: random init (no download); imagenet: pretrained


class BackboneUnavailableError(RuntimeError):
    """Pretrained weights are not cached here and could not be downloaded."""


class Backbone(nn.Module):
    """A frozen feature extractor with its preprocessing.

    ``preprocess`` turns uint8 or float images (NHWC, NCHW or N x H x W) into the normalized,
    resized NCHW float tensor the network expects; ``forward`` takes that tensor;
    ``features`` does both in eval mode without gradients, batch by batch.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        name: str,
        feature_dim: int,
        in_channels: int,
        image_size: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.feature_dim = int(feature_dim)
        self.in_channels = int(in_channels)
        self.image_size = image_size
        self.meta = dict(meta or {})
        mean_t = torch.tensor(mean if mean is not None else [0.0] * in_channels).view(1, -1, 1, 1)
        std_t = torch.tensor(std if std is not None else [1.0] * in_channels).view(1, -1, 1, 1)
        self.register_buffer("mean", mean_t.float(), persistent=False)
        self.register_buffer("std", std_t.float(), persistent=False)

    def preprocess(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Images -> normalized float NCHW on this module's device (uint8 is scaled by 1/255)."""
        x = torch.as_tensor(images)
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        else:
            x = x.float()
        if x.ndim == 3:  # N x H x W (grayscale)
            x = x.unsqueeze(1)
        if x.ndim != 4:
            raise ValueError(f"{self.name}: expected images of 3 or 4 dimensions, got shape {tuple(x.shape)}")
        if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):  # NHWC -> NCHW
            x = x.permute(0, 3, 1, 2)
        x = x.to(self.mean.device).contiguous()
        if x.shape[1] != self.in_channels:
            if x.shape[1] == 1:
                x = x.expand(-1, self.in_channels, -1, -1)
            else:
                raise ValueError(f"{self.name}: expects {self.in_channels} channels, got {x.shape[1]}")
        if self.image_size is not None and tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            x = nn.functional.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @torch.no_grad()
    def features(self, images: np.ndarray | torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Features of ``images`` as a float32 CPU tensor, computed in eval mode batch by batch."""
        was_training = self.training
        self.eval()
        out = [
            self(self.preprocess(images[i : i + batch_size])).float().cpu()
            for i in range(0, len(images), batch_size)
        ]
        self.train(was_training)
        if not out:
            return torch.empty(0, self.feature_dim)
        return torch.cat(out)

    def freeze(self) -> Backbone:
        """Eval mode, no gradients; returns self."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def identity(self) -> dict[str, Any]:
        """What determines this backbone's features (part of a feature cache's content key)."""
        return {
            "name": self.name,
            "feature_dim": self.feature_dim,
            "image_size": self.image_size,
            "mean": [round(float(v), 6) for v in self.mean.flatten()],
            "std": [round(float(v), 6) for v in self.std.flatten()],
            "weights": self.meta.get("weights_id", "unknown"),
        }


# ---------------------------------------------------------------------------------------------
# torchvision ResNets
# ---------------------------------------------------------------------------------------------
def _imagenet_state_dict(name: str, *, progress: bool = True) -> tuple[dict[str, torch.Tensor], str]:
    """The ImageNet state dict of ``name`` from torchvision's hub cache (downloaded when missing)."""
    from torch.hub import get_dir, load_state_dict_from_url
    from torchvision.models import ResNet18_Weights, ResNet50_Weights

    weights = {"resnet18": ResNet18_Weights.IMAGENET1K_V1, "resnet50": ResNet50_Weights.IMAGENET1K_V2}[name]
    url = weights.url
    file_name = url.rsplit("/", 1)[-1]
    cached = Path(get_dir()) / "checkpoints" / file_name
    prefix = file_name.rsplit("-", 1)[-1].split(".")[0]  # torchvision names files <arch>-<sha256[:8]>.pth
    by_hand = (
        f"download {url} on a machine with network access and place it at {cached}, "
        f"or use weights: random (random init, nothing downloaded), or run the mini profile (its digits_cnn "
        f"backbone needs no network)"
    )
    if cached.exists():
        digest = file_digest(cached, "sha256")
        if not digest.startswith(prefix):
            from circadian_core.datasets.download import network_available

            fix = ("delete it and rerun to download again" if network_available(url)
                   else f"this machine is offline: replace it by hand ({by_hand})")
            raise ChecksumError(
                f"{cached}: sha256 {digest[:8]}... does not start with {prefix} as torchvision expects; "
                f"the file is corrupt: {fix}"
            )
    elif os.environ.get("CIRCADIAN_OFFLINE") == "1":
        raise BackboneUnavailableError(
            f"ImageNet weights for {name} are not cached and CIRCADIAN_OFFLINE=1: {by_hand}"
        )
    try:
        state = load_state_dict_from_url(url, progress=progress, check_hash=True, weights_only=True)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; a bad hash is a RuntimeError
        raise BackboneUnavailableError(f"could not get ImageNet weights for {name} ({err}): {by_hand}") from err
    return state, file_name


def build_backbone(
    name: str,
    weights: str = "random",
    *,
    image_size: int | None = None,
    progress: bool = True,
    seed: int = 0,
) -> Backbone:
    """A torchvision ResNet without its classifier (``fc`` is the identity), as a :class:`Backbone`.

    ``weights``: ``random`` or ``none`` (random init, seeded by ``seed``; nothing is downloaded, so a
    profile can swap it in for ``imagenet`` from params.yaml alone) or ``imagenet``. ``image_size``
    resizes inputs (e.g. 224 for ImageNet weights on 32x32 CIFAR); None keeps them as they are.
    """
    import torchvision

    if name not in RESNETS:
        raise ConfigError(f"unknown backbone {name!r}; use one of {', '.join(RESNETS)} (or load_backbone(path))")
    if weights not in WEIGHTS:
        raise ConfigError(f"unknown weights {weights!r} for {name}; use one of {', '.join(WEIGHTS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the random init is a function of the seed alone
        net = getattr(torchvision.models, name)(weights=None)
    weights_id = f"random-init-seed{seed}"
    if weights == "imagenet":
        state, weights_id = _imagenet_state_dict(name, progress=progress)
        net.load_state_dict(state)
    net.fc = nn.Identity()
    return Backbone(
        net,
        name=name,
        feature_dim=RESNETS[name],
        in_channels=3,
        image_size=image_size,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        meta={"weights": weights, "weights_id": weights_id},
    )


# ---------------------------------------------------------------------------------------------
# digits_cnn: a tiny CNN trained in-pipeline on the first Split-Digits task
# ---------------------------------------------------------------------------------------------
class DigitsCNN(nn.Module):
    """conv(1->w) -> ReLU -> conv(w->2w) -> ReLU -> maxpool 2 -> linear(2w*16 -> d) -> ReLU."""

    def __init__(self, width: int = 16, feature_dim: int = 64) -> None:
        super().__init__()
        self.width = width
        self.feature_dim = feature_dim
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * 16, feature_dim),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def digits_backbone(width: int = 16, feature_dim: int = 64) -> Backbone:
    """An untrained ``digits_cnn`` wrapped as a :class:`Backbone` (input 8x8 grayscale in [0, 1])."""
    return Backbone(
        DigitsCNN(width, feature_dim),
        name="digits_cnn",
        feature_dim=feature_dim,
        in_channels=1,
        meta={"arch_config": {"width": width, "feature_dim": feature_dim}},
    )


@dataclasses.dataclass
class DigitsBackboneConfig:
    """Config of the ``digits_cnn`` artifact (params.yaml ``artifacts.digits_cnn.config``)."""

    width: int = 16
    feature_dim: int = 64
    task: int = 0  # which Split-Digits task trains it
    class_order_seed: int | None = None
    epochs: int = 30
    batch_size: int = 32
    lr: float = 0.01
    seed: int = 0


def train_digits_backbone(cfg: DigitsBackboneConfig, device: str = "cpu") -> tuple[Backbone, dict[str, Any]]:
    """Train ``digits_cnn`` with a temporary linear classifier on one Split-Digits task; freeze it."""
    from circadian_core.datasets import split_digits

    tasks = split_digits(class_order_seed=cfg.class_order_seed)
    if not 0 <= cfg.task < len(tasks):
        raise ConfigError(f"digits_cnn: task must be in 0..{len(tasks) - 1}, got {cfg.task}")
    task = tasks[cfg.task]
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    backbone = digits_backbone(cfg.width, cfg.feature_dim).to(device)
    classifier = nn.Linear(cfg.feature_dim, len(task.labels)).to(device)
    remap = {label: i for i, label in enumerate(task.labels)}
    x = backbone.preprocess(task.x_train)
    y = torch.tensor([remap[int(v)] for v in task.y_train], device=device)
    params = [*backbone.parameters(), *classifier.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    backbone.train()
    for _ in range(cfg.epochs):
        for idx in torch.randperm(len(y), generator=gen).split(cfg.batch_size):
            idx = idx.to(device)
            loss = nn.functional.cross_entropy(classifier(backbone(x[idx])), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    backbone.freeze()
    with torch.no_grad():
        xt = backbone.preprocess(task.x_test)
        yt = torch.tensor([remap[int(v)] for v in task.y_test], device=device)
        train_acc = float((classifier(backbone(x)).argmax(1) == y).float().mean())
        test_acc = float((classifier(backbone(xt)).argmax(1) == yt).float().mean())
    info = {
        "dataset": "split_digits",
        "task": cfg.task,
        "labels": list(task.labels),
        "class_order_seed": cfg.class_order_seed,
        "n_train": len(task.y_train),
        "train_accuracy": train_acc,
        "task_test_accuracy": test_acc,
    }
    return backbone.cpu(), info


def build_digits_backbone(
    config: dict[str, Any], *, out: Path, device: str = "cpu", artifacts: dict[str, Path] | None = None
) -> None:
    """Pipeline artifact ``digits_cnn``: train on Split-Digits task ``task``, freeze, save to ``out``."""
    cfg = from_dict(DigitsBackboneConfig, config, where="artifacts.digits_cnn.config")
    backbone, info = train_digits_backbone(cfg, device=device)
    save_backbone(backbone, out, trained_on=info, config=dataclasses.asdict(cfg))
    print(
        f"digits_cnn: trained on task {cfg.task} (labels {info['labels']}), "
        f"task test accuracy {info['task_test_accuracy']:.3f}"
    )


def save_backbone(backbone: Backbone, path: str | Path, **meta: Any) -> Path:
    """Save a ``digits_cnn`` backbone (architecture config, weights, metadata) for ``load_backbone``."""
    if backbone.name != "digits_cnn":
        raise ValueError(f"save_backbone stores digits_cnn backbones; {backbone.name} comes from build_backbone")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in backbone.net.state_dict().items()}
    from circadian_core.artifacts import save_torch  # bytes independent of the (temporary) file name

    save_torch(
        {
            "format": FORMAT,
            "arch": backbone.name,
            "arch_config": dict(backbone.meta["arch_config"]),
            "feature_dim": backbone.feature_dim,
            "input_shape": [1, 8, 8],
            "state_dict": state,
            "meta": meta,
        },
        path,
    )
    return path


def read_artifact(path: Path, fmt: str, what: str, artifact: str) -> dict[str, Any]:
    """The dict saved by ``torch.save`` at ``path`` with ``blob["format"] == fmt`` (tensors only, no
    code: ``weights_only``); a missing, truncated or foreign file is one error naming the fix."""
    if not path.exists():
        raise FileNotFoundError(
            f"{what} {path} not found; build it with `python -m pipelines.scripts.build_artifact {artifact}` "
            "(or `dvc repro`)"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise ValueError(f"{path} is not a readable {what} ({err}); delete it and rebuild the artifact") from err
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        raise ValueError(f"{path} is not a {fmt} file; delete it and rebuild the artifact")
    return blob


def load_backbone(path: str | Path, device: str = "cpu") -> Backbone:
    """Load a backbone saved by :func:`save_backbone` (e.g. the ``digits_cnn`` artifact), frozen.

    The result's ``meta`` holds what it was trained on (``meta["trained_on"]``) and its
    ``weights_id`` (the file's sha256), which feature caches use as part of their content key.
    """
    path = Path(path)
    blob = read_artifact(path, FORMAT, "backbone file", "digits_cnn")
    if blob["arch"] != "digits_cnn":
        raise ValueError(f"{path}: unknown backbone architecture {blob['arch']!r}")
    backbone = digits_backbone(**blob["arch_config"])
    backbone.net.load_state_dict(blob["state_dict"])
    backbone.meta.update(blob.get("meta") or {})
    backbone.meta["weights_id"] = file_digest(path, "sha256")
    return backbone.freeze().to(device)
