"""L2: LoRA on every conv (downsample projections included) and the classifier; the NREM merge; both
implementations (weight-space, peft) compute the same function and the same gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hal_sleep_wake.config import LoRAConfig
from hal_sleep_wake.layout import lora_target_names, module_groups
from hal_sleep_wake.lora import adapter_norm, add_lora, lora_layers, lora_parameters, merge_lora
from hal_sleep_wake.model import build_model

IMPLS = ["weight", "peft"]


def model_with_lora(scenario: str = "task", n_tasks: int = 3, rank: int = 2, alpha: float = 4.0,
                    impl: str = "weight") -> nn.Module:
    torch.manual_seed(0)
    m = build_model([2] * n_tasks, shared_head=scenario != "task", width=4, in_channels=1, cifar_stem=True,
                    norm="group", norm_groups=2)
    add_lora(m, lora_target_names(LoRAConfig(rank=rank, alpha=alpha), n_tasks, scenario), rank=rank, alpha=alpha,
             impl=impl)
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


def _a(layer: nn.Module) -> torch.Tensor:
    return layer.lora_A if isinstance(layer.lora_A, nn.Parameter) else layer.lora_A["default"].weight


def _b(layer: nn.Module) -> torch.Tensor:
    return layer.lora_B if isinstance(layer.lora_B, nn.Parameter) else layer.lora_B["default"].weight


@pytest.mark.parametrize("scenario", ["task", "class", "one-head"])
def test_layout_names_every_conv_and_linear_of_the_built_model(scenario):
    m = build_model([2, 3], shared_head=scenario != "task", width=4, in_channels=3, cifar_stem=True)
    built = {n for n, mod in m.named_modules() if isinstance(mod, (nn.Conv2d, nn.Linear))}
    listed = {n for names in module_groups(2, scenario).values() for n in names}
    assert built == listed
    assert {"layer2.0.downsample.0", "layer3.0.downsample.0", "layer4.0.downsample.0"} <= listed


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("scenario", ["task", "class"])
def test_lora_covers_downsample_and_classifier_and_freezes_the_base(scenario, impl):
    m = model_with_lora(scenario, impl=impl)
    adapted = {name for name, _ in lora_layers(m)}
    assert adapted == set(lora_target_names(LoRAConfig(), 3, scenario))
    assert "layer3.0.downsample.0" in adapted
    assert ("fc" in adapted) if scenario == "class" else ({"fc.heads.0", "fc.heads.2"} <= adapted)
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A" in n or ".lora_B" in n for n in trainable)
    norms = [p for mod in m.modules() if isinstance(mod, nn.GroupNorm) for p in mod.parameters()]
    assert norms and not any(p.requires_grad for p in norms)  # norm layers never train under LoRA


def test_targets_are_config():
    names = lora_target_names(LoRAConfig(targets=["downsample", "layer1.0.conv1"]), 2, "task")
    assert names == ["layer1.0.conv1", "layer2.0.downsample.0", "layer3.0.downsample.0", "layer4.0.downsample.0"]
    with pytest.raises(ValueError, match="neither a group"):
        lora_target_names(LoRAConfig(targets=["layer9"]), 2, "task")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("scenario", ["task", "class"])
def test_merge_keeps_outputs_and_reset_adapters_have_no_effect(scenario, impl):
    m = model_with_lora(scenario, impl=impl)
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
            _a(layer).normal_()
        torch.testing.assert_close(m(x), after, rtol=0, atol=0)


@pytest.mark.parametrize("impl", IMPLS)
def test_merge_adds_scaled_delta(impl):
    m = model_with_lora("task", impl=impl)
    train_adapters(m)
    layer = dict(lora_layers(m))["layer2.0.downsample.0"]
    w0 = layer.get_base_layer().weight.detach().clone()
    with torch.no_grad():
        expected = 0.5 * (4.0 / 2) * (_b(layer).flatten(1) @ _a(layer).flatten(1))  # s (alpha / r) B A, by hand
    merge_lora(m, scale=0.5)
    torch.testing.assert_close(layer.get_base_layer().weight.detach() - w0, expected.view_as(w0))


def test_weight_space_lora_is_peft_lora():
    """Same A and B: the one-conv forward and peft's three-conv forward agree, and so do the gradients
    (float64, so that only a real difference, not summation order, can fail this)."""
    ours, theirs = model_with_lora("class", impl="weight").double(), model_with_lora("class", impl="peft").double()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for (_, a), (_, b) in zip(lora_layers(ours), lora_layers(theirs)):
            b.get_base_layer().weight.copy_(a.get_base_layer().weight)
            _a(a).copy_(torch.randn(_a(a).shape, generator=g, dtype=torch.float64))
            _b(a).copy_(torch.randn(_b(a).shape, generator=g, dtype=torch.float64) * 0.1)
            _a(b).copy_(_a(a).view_as(_a(b)))
            _b(b).copy_(_b(a).view_as(_b(b)))
    x = torch.randn(8, 1, 8, 8, generator=g, dtype=torch.float64)
    out_ours, out_theirs = ours(x), theirs(x)
    assert out_ours.abs().max() > 1  # the adapters matter
    torch.testing.assert_close(out_ours, out_theirs, rtol=1e-10, atol=1e-10)
    out_ours.square().sum().backward()
    out_theirs.square().sum().backward()
    for (_, a), (_, b) in zip(lora_layers(ours), lora_layers(theirs)):
        torch.testing.assert_close(_b(a).grad, _b(b).grad.view_as(_b(a)), rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(_a(a).grad, _a(b).grad.view_as(_a(a)), rtol=1e-9, atol=1e-9)
