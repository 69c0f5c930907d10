"""The eyes: frozen feature extractors that turn images into the feature vectors the brains learn on.

* :class:`PretrainedEyes` wraps a frozen :class:`~circadian_vision.backbones.Backbone`:
  ``PretrainedEyes.resnet18()`` is torchvision's ResNet-18 with ImageNet weights (downloaded once
  into torch's hub cache; offline it raises ``BackboneUnavailableError`` naming the file to place
  by hand), ``PretrainedEyes.from_file(path)`` loads a saved backbone such as the ``mini``
  profile's ``digits_cnn`` artifact (a small CNN trained in-pipeline on the first Split-Digits
  task, then frozen).
* :class:`RandomProjectionEyes` is a stand-in with no training at all: a frozen, seeded Gaussian
  projection of the flattened pixels. Tests use it; it needs no artifact.

Both expose ``feature_dim``, ``features(images) -> (N, feature_dim)`` float32 CPU tensor and
``identity()`` (what determines the features).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from circadian_vision.backbones import Backbone, BackboneUnavailableError, build_backbone, load_backbone

__all__ = ["BackboneUnavailableError", "PretrainedEyes", "RandomProjectionEyes"]


def _float_images(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(images)
    return x.float().div(255.0) if x.dtype == torch.uint8 else x.float()


class PretrainedEyes(nn.Module):
    """A frozen backbone used as the sensory cortex: images in, features out, never trained."""

    def __init__(self, backbone: Backbone, device: str = "cpu") -> None:
        super().__init__()
        self.backbone = backbone.freeze().to(device)
        self.device = device

    @classmethod
    def resnet18(
        cls, weights: str = "imagenet", *, image_size: int | None = 224, device: str = "cpu", progress: bool = True
    ) -> PretrainedEyes:
        """torchvision ResNet-18 without its classifier (512-d features), frozen.

        ``weights="imagenet"`` downloads the ImageNet weights once (sha256-checked); offline it
        raises ``BackboneUnavailableError`` naming the file to place by hand. ``image_size``
        resizes inputs (the prototype fed CIFAR-10 at 224 x 224).
        """
        return cls(build_backbone("resnet18", weights, image_size=image_size, progress=progress), device=device)

    @classmethod
    def from_file(cls, path: str | Path, *, device: str = "cpu") -> PretrainedEyes:
        """A backbone saved with ``circadian_vision.backbones.save_backbone`` (e.g. ``digits_cnn``)."""
        return cls(load_backbone(path, device=device), device=device)

    @property
    def feature_dim(self) -> int:
        return self.backbone.feature_dim

    def identity(self) -> dict[str, Any]:
        return self.backbone.identity()

    @torch.no_grad()
    def features(self, images: np.ndarray | torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        return self.backbone.features(images, batch_size=batch_size)

    def forward(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        return self.features(images)


class RandomProjectionEyes(nn.Module):
    """Stand-in eyes: ``features = flatten(images) @ P.T`` with a frozen seeded Gaussian ``P``.

    Not a trained vision model: a Johnson-Lindenstrauss projection that keeps the pixel geometry.
    """

    def __init__(self, in_shape: tuple[int, ...] = (8, 8), feature_dim: int = 64, seed: int = 0) -> None:
        super().__init__()
        in_dim = int(np.prod(in_shape))
        gen = torch.Generator().manual_seed(seed)
        self.in_shape = tuple(in_shape)
        self.seed = seed
        self.register_buffer("projection", torch.randn(feature_dim, in_dim, generator=gen) / in_dim**0.5)

    @property
    def feature_dim(self) -> int:
        return int(self.projection.shape[0])

    def identity(self) -> dict[str, Any]:
        return {"name": "random_projection", "in_shape": list(self.in_shape), "feature_dim": self.feature_dim, "seed": self.seed}

    @torch.no_grad()
    def features(self, images: np.ndarray | torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        x = _float_images(images)
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"random-projection eyes expect images of shape {self.in_shape}, got {tuple(x.shape[1:])}")
        flat = x.reshape(len(x), -1).to(self.projection.device)
        return (flat @ self.projection.T).cpu()

    def forward(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        return self.features(images)
