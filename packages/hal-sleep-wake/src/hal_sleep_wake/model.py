"""L3: torchvision's ResNet-18 (optionally narrow, optionally with a CIFAR stem) with a continual classifier;
or Mammoth's two-layer MNIST MLP (:class:`HALMLP`) for its Seq-MNIST protocol (no LoRA, no sleep).

The trunk is torchvision's ``ResNet`` with its ``BasicBlock`` and ``_make_layer``; only the channel
counts scale with ``width`` (64 = torchvision's ResNet-18, 8 = the narrow ResNet-18 of the mini
profile) and the CIFAR stem swaps the 7x7/stride-2 conv and max-pool for one 3x3/stride-1 conv.

The classifier is ``fc``:

* task-incremental: :class:`TaskHeads`, one ``nn.Linear`` per task (``fc.heads.<t>``); their outputs are
  concatenated, so every model returns logits over all classes of the sequence;
* class-incremental: one shared ``nn.Linear`` over all classes.

``norm_layer`` is torchvision's own ResNet option: BatchNorm by default, GroupNorm on request.

Which logits count is decided by a boolean mask (:func:`mask_logits`): a sample's own task block in
the task-incremental scenario, every class seen so far in the class-incremental one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from hal_sleep_wake.layout import BLOCKS_PER_STAGE, lora_target_names, module_groups

__all__ = ["HALMLP", "HALResNet", "TaskHeads", "build_model", "lora_target_names", "mask_logits", "module_groups"]


class TaskHeads(nn.Module):
    """Per-task linear heads whose outputs are concatenated in task order."""

    def __init__(self, in_features: int, sizes: list[int]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(in_features, n) for n in sizes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(h) for head in self.heads], dim=1)


class HALResNet(ResNet):
    """torchvision ResNet-18 with ``width`` channels in its first stage and a continual classifier."""

    def __init__(
        self,
        head_sizes: list[int],
        *,
        shared_head: bool,
        width: int = 64,
        in_channels: int = 3,
        cifar_stem: bool = True,
        norm_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        nn.Module.__init__(self)  # ResNet.__init__ hard-codes 64..512 channels; the rest is its code path
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self.dilation = 1
        self.groups = 1
        self.base_width = 64  # BasicBlock's required value; it does not set the channel count
        self.inplanes = width
        if cifar_stem:
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = self._norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(BasicBlock, width, BLOCKS_PER_STAGE)
        self.layer2 = self._make_layer(BasicBlock, 2 * width, BLOCKS_PER_STAGE, stride=2)
        self.layer3 = self._make_layer(BasicBlock, 4 * width, BLOCKS_PER_STAGE, stride=2)
        self.layer4 = self._make_layer(BasicBlock, 8 * width, BLOCKS_PER_STAGE, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.feature_dim = 8 * width * BasicBlock.expansion
        self.fc: nn.Module = (
            nn.Linear(self.feature_dim, sum(head_sizes)) if shared_head else TaskHeads(self.feature_dim, head_sizes)
        )
        for m in self.modules():  # torchvision's initialization
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled trunk output that ``fc`` reads (torchvision's ``_forward_impl`` without ``fc``)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


class HALMLP(nn.Module):
    """Mammoth's MNIST network: the flattened image, two ReLU layers of ``hidden`` units, a continual
    classifier ``fc`` (as :class:`HALResNet`'s). No normalization layers."""

    def __init__(self, head_sizes: list[int], *, shared_head: bool, in_features: int, hidden: int = 100) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(),
                                   nn.Linear(hidden, hidden), nn.ReLU())
        self.feature_dim = hidden
        self.fc: nn.Module = nn.Linear(hidden, sum(head_sizes)) if shared_head else TaskHeads(hidden, head_sizes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.trunk(x))


def build_model(
    head_sizes: list[int], *, width: int, in_channels: int, cifar_stem: bool, norm: str = "batch",
    norm_groups: int = 4, shared_head: bool | None = None, scenario: str | None = None,
    arch: str = "resnet18", hidden: int = 100, image_shape: tuple[int, ...] | None = None,
) -> HALResNet | HALMLP:
    """The model of one scenario: per-task heads (``scenario="task"``) or one shared head (``class``,
    ``one-head``); ``shared_head`` says it directly. ``arch="mlp"`` needs ``image_shape`` (C, H, W)."""
    if (shared_head is None) == (scenario is None):
        raise TypeError("build_model: pass exactly one of shared_head= and scenario=")
    if shared_head is None:
        shared_head = scenario != "task"
    if arch == "mlp":
        if image_shape is None:
            raise TypeError("build_model: arch='mlp' needs image_shape=(C, H, W)")
        return HALMLP(head_sizes, shared_head=shared_head, in_features=math.prod(image_shape), hidden=hidden)
    if arch != "resnet18":
        raise ValueError(f"build_model: unknown arch {arch!r}; use resnet18 or mlp")
    norm_layer = None if norm == "batch" else partial(nn.GroupNorm, norm_groups)
    return HALResNet(head_sizes, shared_head=shared_head, width=width, in_channels=in_channels,
                     cifar_stem=cifar_stem, norm_layer=norm_layer)


def mask_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``logits`` with every entry outside ``mask`` (broadcastable bool) set to -inf."""
    return logits.masked_fill(~mask, float("-inf"))
