"""BackpropHead: a linear softmax classifier trained by SGD; optionally with an unfrozen backbone."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from circadian_vision.backbones import Backbone
from circadian_vision.heads.base import Head, _init_uniform


@dataclasses.dataclass
class BackpropConfig:
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    finetune: bool = False  # train the backbone too (bypasses the feature cache)
    backbone_lr: float = 0.005  # lr of the backbone when finetuning


class BackpropHead(Head):
    """``logits = W x + b``, cross-entropy, SGD with momentum.

    With ``backbone`` (``finetune=True``), ``train_step``/``logits`` take preprocessed images and
    the backbone is trained as well (the prototype without ``--backprop-freeze-backbone``).
    """

    name = "backprop"

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        config: BackpropConfig | None = None,
        *,
        seed: int = 0,
        backbone: Backbone | None = None,
    ) -> None:
        super().__init__(in_dim, num_classes)
        self.cfg = cfg = config or BackpropConfig()
        gen = torch.Generator().manual_seed(seed)
        self.linear = nn.Linear(in_dim, num_classes)
        with torch.no_grad():
            self.linear.weight.copy_(_init_uniform((num_classes, in_dim), in_dim, gen))
            self.linear.bias.copy_(_init_uniform((num_classes,), in_dim, gen))
        self.backbone = backbone
        groups = [{"params": list(self.linear.parameters()), "lr": cfg.lr}]
        if backbone is not None:
            if not cfg.finetune:
                raise ValueError("BackpropHead takes a backbone only with finetune=True; otherwise train on cached features")
            backbone.train()
            for p in backbone.parameters():
                p.requires_grad_(True)
            groups.append({"params": list(backbone.parameters()), "lr": cfg.backbone_lr})
        self.opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x) if self.backbone is not None else x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self._features(x))

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = nn.functional.cross_entropy(self.logits(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()
