"""L2: peft LoRA on every conv (downsample projections included) and the classifier; the NREM merge."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hal_sleep_wake.config import LoRAConfig
from hal_sleep_wake.layout import lora_target_names, module_groups
from hal_sleep_wake.lora import ADAPTER, adapter_norm, add_lora, lora_layers, lora_parameters, merge_lora
from hal_sleep_wake.model import build_model


def model_with_lora(scenario: str = "task", n_tasks: int = 3, rank: int = 2, alpha: float = 4.0) -> nn.Module:
    torch.manual_seed(0)
    m = build_model([2] * n_tasks, scenario=scenario, width=4, in_channels=1, cifar_stem=True, norm="group",
                    norm_groups=2)
    add_lora(m, lora_target_names(LoRAConfig(rank=rank, alpha=alpha), n_tasks, scenario), rank=rank, alpha=alpha)
    return m


def train_adapters(m: nn.Module, steps: int = 5) -> None:
    """Give the adapters non-zero B so a merge has something to merge."""
    opt = torch.optim.SGD(lora_parameters(m), lr=0.2)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(8, 1, 8, 8, generator=g)
        loss = torch.nn.functional.cross_entropy(m(x), torch.randint(0, 2, (8,), generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("scenario", ["task", "class"])
def test_layout_names_every_conv_and_linear_of_the_built_model(scenario):
    m = build_model([2, 3], scenario=scenario, width=4, in_channels=3, cifar_stem=True)
    built = {n for n, mod in m.named_modules() if isinstance(mod, (nn.Conv2d, nn.Linear))}
    listed = {n for names in module_groups(2, scenario).values() for n in names}
    assert built == listed
    assert {"layer2.0.downsample.0", "layer3.0.downsample.0", "layer4.0.downsample.0"} <= listed


@pytest.mark.parametrize("scenario", ["task", "class"])
def test_lora_covers_downsample_and_classifier_and_freezes_the_base(scenario):
    m = model_with_lora(scenario)
    adapted = {name for name, _ in lora_layers(m)}
    assert adapted == set(lora_target_names(LoRAConfig(), 3, scenario))
    assert "layer3.0.downsample.0" in adapted
    assert ("fc" in adapted) if scenario == "class" else ({"fc.heads.0", "fc.heads.2"} <= adapted)
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)


def test_targets_are_config():
    names = lora_target_names(LoRAConfig(targets=["downsample", "layer1.0.conv1"]), 2, "task")
    assert names == ["layer1.0.conv1", "layer2.0.downsample.0", "layer3.0.downsample.0", "layer4.0.downsample.0"]
    with pytest.raises(ValueError, match="neither a group"):
        lora_target_names(LoRAConfig(targets=["layer9"]), 2, "task")


@pytest.mark.parametrize("scenario", ["task", "class"])
def test_merge_keeps_outputs_and_reset_adapters_have_no_effect(scenario):
    m = model_with_lora(scenario)
    train_adapters(m)
    assert adapter_norm(m) > 0
    m.eval()
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = m(x)
        merged = merge_lora(m, scale=1.0)
        after = m(x)
    assert merged == len(list(lora_layers(m)))
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)  # float32 tolerance
    assert adapter_norm(m) == 0.0  # B reset to zero ...
    with torch.no_grad():  # ... so whatever A holds, the adapters change nothing
        for _, layer in lora_layers(m):
            layer.lora_A[ADAPTER].weight.normal_()
        torch.testing.assert_close(m(x), after, rtol=0, atol=0)


def test_merge_adds_scaled_delta():
    m = model_with_lora("task")
    train_adapters(m)
    layer = dict(lora_layers(m))["layer2.0.downsample.0"]
    w0 = layer.get_base_layer().weight.detach().clone()
    with torch.no_grad():
        b = layer.lora_B[ADAPTER].weight.flatten(1)
        a = layer.lora_A[ADAPTER].weight.flatten(1)
        expected = 0.5 * (4.0 / 2) * (b @ a)  # s (alpha / r) B A, by hand
    merge_lora(m, scale=0.5)
    torch.testing.assert_close(layer.get_base_layer().weight.detach() - w0, expected.view_as(w0))
