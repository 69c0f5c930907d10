import random

import numpy as np
import pytest

from circadian_core.device import available_devices, pick_device
from circadian_core.seeding import seed_everything


def test_auto_picks_best_available():
    assert pick_device("auto") == available_devices()[0]
    assert pick_device("cpu") == "cpu"


def test_unknown_device_rejected():
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("tpu")


def test_unavailable_cuda_names_fix():
    if "cuda" in available_devices():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="--device auto or --device cpu"):
        pick_device("cuda")


def test_same_seed_same_streams():
    def draw(seed):
        g = seed_everything(seed)
        out = [random.random(), float(np.random.rand()), float(g.random())]  # noqa: NPY002
        try:
            import torch

            out.append(float(torch.rand(1)))
        except ImportError:
            pass
        return out

    assert draw(5) == draw(5)
    assert draw(5) != draw(6)


def test_seed_must_be_int():
    with pytest.raises(TypeError):
        seed_everything(1.5)  # type: ignore[arg-type]


def test_torch_is_put_in_deterministic_warn_only_mode():
    torch = pytest.importorskip("torch")
    torch.use_deterministic_algorithms(False)
    try:
        seed_everything(0)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        a = torch.rand(3)
        seed_everything(0)
        assert torch.equal(a, torch.rand(3))
    finally:
        torch.use_deterministic_algorithms(False)


def test_a_negative_seed_is_one_error_naming_its_key():
    from circadian_core.config import ConfigError
    from circadian_core.seeding import check_seed

    assert check_seed(np.int64(7)) == 7
    with pytest.raises(ConfigError, match=r"seed -1 \(params.yaml studies.x.seeds\): .*non-negative.*fix params.yaml"):
        seed_everything(-1, where="params.yaml studies.x.seeds")
    with pytest.raises(TypeError, match=r"seed True \(the seed argument\)"):
        check_seed(True)
