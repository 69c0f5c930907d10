"""peft <-> mlx-lm adapter conversion: same logits before and after, on the tiny model.

Every logits test uses LoRA B matrices filled with noise (a fresh adapter has B = 0 and would
compare the base models only). The format tests need no MLX; the logits tests skip without it.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from circadia.adapters_convert import convert, detect_format, mlx_to_peft, peft_to_mlx

peft = pytest.importorskip("peft")
# peft calls a deprecated transformers property
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")

TOKENS = np.random.default_rng(0).integers(3, 1000, size=(2, 19))
ATOL = 1e-4


def _torch_logits(model_dir, adapter=None) -> np.ndarray:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    if adapter is not None:
        model = peft.PeftModel.from_pretrained(model, str(adapter)).eval()
    with torch.no_grad():
        return model(torch.tensor(TOKENS)).logits.float().numpy()


def _mlx():
    """mlx.core, imported after circadia's MLX backend (which first picks a fast BLAS on Linux)."""
    pytest.importorskip("mlx", reason="mlx is not installed (pip install 'circadia[mlx]')")
    from circadia.backends.mlx_backend import mx

    return mx


def _mlx_logits(model_dir, adapter=None) -> np.ndarray:
    mx = _mlx()
    from circadia.backends.mlx_backend import load_mlx

    model, _ = load_mlx(model_dir, adapter)
    return np.array(model(mx.array(TOKENS)).astype(mx.float32))


def _random_peft_adapter(model_dir, out, seed=1, **lora):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = peft.get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_dir), peft.LoraConfig(lora_dropout=0.0, **lora)
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5)
    model.save_pretrained(str(out))
    return out


PEFT_CASES = {
    "plain": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]),
    "rslora_last_block": dict(
        r=4, lora_alpha=8, use_rslora=True, target_modules=["q_proj", "o_proj"], layers_to_transform=[1]
    ),
    "rank_alpha_patterns": dict(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj", "down_proj"],
        rank_pattern={"v_proj": 2},
        alpha_pattern={"down_proj": 3},
    ),
}


@pytest.fixture(scope="module")
def base_logits(tiny_model_dir):
    return _torch_logits(tiny_model_dir)


@pytest.fixture(scope="module", params=sorted(PEFT_CASES))
def peft_case(request, tiny_model_dir, tmp_path_factory, base_logits):
    out = tmp_path_factory.mktemp(f"peft-{request.param}") / "adapter"
    _random_peft_adapter(tiny_model_dir, out, **PEFT_CASES[request.param])
    logits = _torch_logits(tiny_model_dir, out)
    assert np.abs(logits - base_logits).max() > 0.1, "the adapter must change the logits"
    return out, logits


def test_peft_adapter_converted_to_mlx_gives_the_same_logits(peft_case, tiny_model_dir, tmp_path):
    src, torch_logits = peft_case
    dst = peft_to_mlx(src, tmp_path / "mlx")
    assert detect_format(dst) == "mlx"
    np.testing.assert_allclose(_mlx_logits(tiny_model_dir, dst), torch_logits, atol=ATOL, rtol=0)


def test_peft_to_mlx_to_peft_round_trip_keeps_the_update(peft_case, tiny_model_dir, tmp_path):
    src, torch_logits = peft_case
    back = mlx_to_peft(peft_to_mlx(src, tmp_path / "mlx"), tmp_path / "peft")
    assert detect_format(back) == "peft"
    np.testing.assert_allclose(_torch_logits(tiny_model_dir, back), torch_logits, atol=ATOL, rtol=0)


def test_plain_peft_round_trip_is_bit_exact(tiny_model_dir, tmp_path):
    src = _random_peft_adapter(tiny_model_dir, tmp_path / "src", **PEFT_CASES["plain"])
    back = convert(convert(src, tmp_path / "mlx"), tmp_path / "back")
    original, returned = (
        load_file(str(src / "adapter_model.safetensors")),
        load_file(str(back / "adapter_model.safetensors")),
    )
    assert original.keys() == returned.keys()
    for key in original:
        assert torch.equal(original[key], returned[key]), key
    config = json.loads((back / "adapter_config.json").read_text())
    assert config["lora_alpha"] / config["r"] == 2.0


def test_peft_to_mlx_layout_and_scale(tiny_model_dir, tmp_path):
    src = _random_peft_adapter(
        tiny_model_dir, tmp_path / "src", r=4, lora_alpha=16, target_modules=["q_proj"]
    )
    dst = peft_to_mlx(src, tmp_path / "mlx")
    config = json.loads((dst / "adapter_config.json").read_text())
    assert config["fine_tune_type"] == "lora"
    assert config["lora_parameters"]["rank"] == 4
    assert math.isclose(config["lora_parameters"]["scale"], 16 / 4)
    assert config["lora_parameters"]["keys"] == ["self_attn.q_proj"]
    assert config["num_layers"] == 2  # read from the base model's config.json
    weights = load_file(str(dst / "adapters.safetensors"))
    peft_weights = load_file(str(src / "adapter_model.safetensors"))
    a = peft_weights["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]
    assert torch.equal(weights["model.layers.0.self_attn.q_proj.lora_a"], a.t())


def test_mlx_adapter_converted_to_peft_gives_the_same_logits(tiny_model_dir, tmp_path):
    mx = _mlx()
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from circadia.backends.mlx_backend import load_mlx

    model, _ = load_mlx(tiny_model_dir)
    model.freeze()
    mx.random.seed(3)
    lora = {"rank": 3, "scale": 5.0, "dropout": 0.0}
    linear_to_lora_layers(model, 1, lora)  # mlx-lm default keys: every linear of the last block
    weights = {
        k: mx.random.normal(v.shape) * 0.3 if k.endswith("lora_b") else v
        for k, v in tree_flatten(model.trainable_parameters())
    }
    src = tmp_path / "mlx"
    src.mkdir()
    mx.save_safetensors(str(src / "adapters.safetensors"), weights)
    (src / "adapter_config.json").write_text(
        json.dumps({"fine_tune_type": "lora", "num_layers": 1, "lora_parameters": lora})
    )
    mlx_logits = _mlx_logits(tiny_model_dir, src)
    assert np.abs(mlx_logits - _torch_logits(tiny_model_dir)).max() > 0.1

    dst = mlx_to_peft(src, tmp_path / "peft", base_model_name_or_path=str(tiny_model_dir))
    config = json.loads((dst / "adapter_config.json").read_text())
    assert config["layers_to_transform"] == [1] and config["r"] == 3 and config["lora_alpha"] == 15.0
    np.testing.assert_allclose(_torch_logits(tiny_model_dir, dst), mlx_logits, atol=ATOL, rtol=0)


@pytest.mark.filterwarnings("ignore:Found missing adapter keys")
def test_irregular_module_set_is_named_module_by_module(tiny_model_dir, tmp_path):
    src = _random_peft_adapter(tiny_model_dir, tmp_path / "src", **PEFT_CASES["plain"])
    weights = load_file(str(src / "adapter_model.safetensors"))
    for ab in "AB":  # drop one module of one block: no longer a (blocks x modules) product
        del weights[f"base_model.model.model.layers.1.mlp.down_proj.lora_{ab}.weight"]
    save_file(weights, str(src / "adapter_model.safetensors"))
    expected = _torch_logits(tiny_model_dir, src)
    back = mlx_to_peft(peft_to_mlx(src, tmp_path / "mlx"), tmp_path / "back")
    config = json.loads((back / "adapter_config.json").read_text())
    assert (
        "model.layers.0.mlp.down_proj" in config["target_modules"] and config["layers_to_transform"] is None
    )
    np.testing.assert_allclose(_torch_logits(tiny_model_dir, back), expected, atol=ATOL, rtol=0)


def test_unsupported_adapters_and_bad_folders_fail_clearly(tiny_model_dir, tmp_path):
    dora = _random_peft_adapter(
        tiny_model_dir, tmp_path / "dora", r=2, lora_alpha=4, target_modules=["q_proj"], use_dora=True
    )
    with pytest.raises(ValueError, match="use_dora"):
        peft_to_mlx(dora, tmp_path / "out")
    with pytest.raises(ValueError, match="not a LoRA adapter folder"):
        detect_format(tmp_path)
    plain = _random_peft_adapter(
        tiny_model_dir, tmp_path / "plain", r=2, lora_alpha=4, target_modules=["q_proj"]
    )
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="overwrite"):
        peft_to_mlx(plain, taken)
    assert (taken / "keep.txt").read_text() == "user data"
    assert not (tmp_path / "out").exists()


def test_cli_converts_and_reports_errors(tiny_model_dir, tmp_path, capsys):
    from circadia.adapters_convert import main

    src = _random_peft_adapter(tiny_model_dir, tmp_path / "src", r=2, lora_alpha=4, target_modules=["q_proj"])
    assert main([str(src), str(tmp_path / "mlx")]) == 0
    assert "peft -> mlx" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "missing"), str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert "not a LoRA adapter folder" in capsys.readouterr().err
