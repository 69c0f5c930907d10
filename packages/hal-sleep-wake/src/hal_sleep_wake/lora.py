"""L2: LoRA adapters on the ResNet's convolutions and linear layers, and the NREM merge.

Two implementations behind one interface (``lora.impl``):

* ``weight`` (default): :class:`LoRAConv2d` / :class:`LoRALinear` wrap the base layer and compute
  ``W + (alpha/r) B A`` once per forward, then run **one** convolution. ``A`` is ``(r, in*kh*kw)`` and
  ``B`` is ``(out, r)``, exactly the factorization of peft's conv LoRA (a ``kh x kw`` conv to ``r``
  channels followed by a 1x1 conv), so the function and the gradients are the same - but a layer
  costs one convolution instead of three (measured: about half the wake time on CPU).
* ``peft``: peft's LoRA layers (``inject_adapter_in_model``), kept so the benchmark can run the two
  side by side; peft is imported only then.

Either way only the adapters train (``add_lora`` freezes everything else, norm layers and heads
included), and :func:`merge_lora` adds ``s * delta`` to each base weight and re-initializes the
adapter (Kaiming-uniform A, zero B), in place, so an optimizer holding the adapter tensors stays valid.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

ADAPTER = "default"  # peft's adapter name


class _LoRA(nn.Module):
    """Shared part of the weight-space adapters: ``delta = scaling * B @ A`` in the base weight's shape."""

    def __init__(self, base: nn.Module, fan_in: int, fan_out: int, rank: int, alpha: float) -> None:
        super().__init__()
        self.base_layer = base
        self.scaling = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, fan_in, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(fan_out, rank, device=base.weight.device))
        self.reset_lora_parameters()

    @torch.no_grad()
    def reset_lora_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # peft's (and nn.Linear's) init of A
        self.lora_B.zero_()

    def get_base_layer(self) -> nn.Module:
        return self.base_layer

    def delta_weight(self) -> torch.Tensor:
        return (self.scaling * (self.lora_B @ self.lora_A)).view_as(self.base_layer.weight)

    def weight(self) -> torch.Tensor:
        return self.base_layer.weight + self.delta_weight().to(self.base_layer.weight.dtype)


class LoRAConv2d(_LoRA):
    def __init__(self, base: nn.Conv2d, rank: int, alpha: float) -> None:
        kh, kw = base.kernel_size
        super().__init__(base, base.in_channels // base.groups * kh * kw, base.out_channels, rank, alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = self.base_layer
        return base._conv_forward(x, self.weight(), base.bias)


class LoRALinear(_LoRA):
    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__(base, base.in_features, base.out_features, rank, alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.base_layer.bias)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def add_lora(model: nn.Module, targets: list[str], *, rank: int, alpha: float, impl: str = "weight") -> nn.Module:
    """Adapt the modules named ``targets`` (rank ``rank``, scaling ``alpha / rank``), in place.

    Afterwards only LoRA parameters require gradients: the base (L3), its norm layers and heads are frozen.
    """
    if impl == "peft":
        from peft import LoraConfig, inject_adapter_in_model

        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=list(targets), bias="none",
                            init_lora_weights=True)
        inject_adapter_in_model(config, model, adapter_name=ADAPTER)
    elif impl == "weight":
        for name in targets:
            base = model.get_submodule(name)
            if isinstance(base, nn.Conv2d):
                _replace(model, name, LoRAConv2d(base, rank, alpha))
            elif isinstance(base, nn.Linear):
                _replace(model, name, LoRALinear(base, rank, alpha))
            else:
                raise TypeError(f"LoRA target {name!r} is a {type(base).__name__}, not a Conv2d or Linear")
    else:
        raise ValueError(f"unknown LoRA implementation {impl!r}; use 'weight' or 'peft'")
    for pname, p in model.named_parameters():
        p.requires_grad_(is_lora_name(pname))
    return model


def is_lora_name(param_name: str) -> bool:
    return ".lora_A" in param_name or ".lora_B" in param_name


def lora_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(name, adapted layer) for every adapted module, either implementation."""
    for name, module in model.named_modules():
        if isinstance(module, _LoRA) or (hasattr(module, "lora_A") and ADAPTER in getattr(module, "lora_A", {})):
            yield name, module


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if is_lora_name(n)]


def _delta(layer: nn.Module) -> torch.Tensor:
    return layer.delta_weight() if isinstance(layer, _LoRA) else layer.get_delta_weight(ADAPTER)


def _reset(layer: nn.Module) -> None:
    if isinstance(layer, _LoRA):
        layer.reset_lora_parameters()
    else:
        layer.reset_lora_parameters(ADAPTER, init_lora_weights=True)


@torch.no_grad()
def merge_lora(model: nn.Module, scale: float = 1.0) -> int:
    """NREM: ``W <- W + scale * (alpha/r) B A`` for every adapted layer, then fresh adapters.

    Returns the number of layers merged. With ``scale = 1`` the model's function is unchanged
    (up to float rounding); the reset adapters have ``B = 0`` and so no effect until trained again.
    """
    n = 0
    for _, layer in lora_layers(model):
        base = layer.get_base_layer()
        base.weight.add_(_delta(layer).to(base.weight.dtype), alpha=scale)
        _reset(layer)
        n += 1
    return n


def adapter_norm(model: nn.Module) -> float:
    """Frobenius norm of all LoRA ``B`` matrices (0 right after a reset)."""
    total = torch.zeros(())
    for _, layer in lora_layers(model):
        b = layer.lora_B if isinstance(layer, _LoRA) else layer.lora_B[ADAPTER].weight
        total = total + b.detach().float().pow(2).sum().cpu()
    return float(total.sqrt())
