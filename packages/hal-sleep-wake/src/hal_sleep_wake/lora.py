"""L2: LoRA adapters through peft, and the NREM merge.

``add_lora`` injects peft LoRA layers (``peft.inject_adapter_in_model``) into the named Conv2d and
Linear modules - the residual 1x1 downsample projections and the classifier included - and freezes
everything else. peft has no "merge into the base and keep training a fresh adapter" operation
(``merge_and_unload`` removes the adapters), so :func:`merge_lora` is the one piece of custom code:
it adds ``s * get_delta_weight()`` (peft's ``(alpha/r) B A``, reshaped to the conv kernel) to each base
weight and re-initializes the adapter with peft's ``reset_lora_parameters`` (Kaiming A, zero B).
peft is imported here, lazily, so the reference methods (full fine-tuning) never pay for it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

ADAPTER = "default"


def add_lora(model: nn.Module, targets: list[str], *, rank: int, alpha: float, dropout: float = 0.0) -> nn.Module:
    """Inject LoRA (rank ``rank``, scaling ``alpha / rank``) into the modules named ``targets``, in place.

    Afterwards only LoRA parameters require gradients; the base (L3) is frozen.
    """
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(targets),
        bias="none",
        init_lora_weights=True,
    )
    inject_adapter_in_model(config, model, adapter_name=ADAPTER)
    for name, p in model.named_parameters():
        p.requires_grad_(is_lora_name(name))
    return model


def is_lora_name(param_name: str) -> bool:
    return ".lora_A." in param_name or ".lora_B." in param_name


def lora_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(name, peft LoRA layer) for every adapted module."""
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and ADAPTER in getattr(module, "lora_A", {}):
            yield name, module


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if is_lora_name(n)]


@torch.no_grad()
def merge_lora(model: nn.Module, scale: float = 1.0) -> int:
    """NREM: ``W <- W + scale * (alpha/r) B A`` for every adapted layer, then fresh adapters.

    Returns the number of layers merged. With ``scale = 1`` the model's function is unchanged
    (up to float rounding); the reset adapters have ``B = 0`` and so no effect until trained again.
    """
    n = 0
    for _, layer in lora_layers(model):
        base = layer.get_base_layer()
        delta = layer.get_delta_weight(ADAPTER)
        base.weight.add_(delta.to(base.weight.dtype), alpha=scale)
        layer.reset_lora_parameters(ADAPTER, init_lora_weights=True)
        n += 1
    return n


def adapter_norm(model: nn.Module) -> float:
    """Frobenius norm of all LoRA ``B`` matrices (0 right after a reset)."""
    total = torch.zeros(())
    for _, layer in lora_layers(model):
        total = total + layer.lora_B[ADAPTER].weight.detach().float().pow(2).sum().cpu()
    return float(total.sqrt())
