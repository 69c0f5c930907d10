"""Backbones: torchvision ResNets, the ImageNet weights path (offline, corrupt file) and digits_cnn."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch

from circadian_core.config import ConfigError
from circadian_core.datasets import ChecksumError
from circadian_vision.backbones import (
    BackboneUnavailableError,
    DigitsBackboneConfig,
    build_backbone,
    build_digits_backbone,
    digits_backbone,
    load_backbone,
    save_backbone,
    train_digits_backbone,
)


def test_resnet18_features_shape_from_uint8_nhwc():
    torch.manual_seed(0)
    bb = build_backbone("resnet18", "none").freeze()
    images = np.random.default_rng(0).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    f = bb.features(images)
    assert f.shape == (3, 512) and f.dtype == torch.float32
    assert not any(p.requires_grad for p in bb.parameters())


def test_preprocess_grayscale_resize_and_normalize():
    bb = build_backbone("resnet18", "none", image_size=16)
    x = bb.preprocess(np.ones((2, 8, 8), dtype=np.float32))  # grayscale N x H x W in [0, 1]
    assert x.shape == (2, 3, 16, 16)
    expected = (1.0 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(x[0, :, 5, 5], expected)


def test_unknown_backbone_or_weights_are_config_errors():
    with pytest.raises(ConfigError, match="resnet18, resnet50"):
        build_backbone("resnet34")
    with pytest.raises(ConfigError, match="none, imagenet"):
        build_backbone("resnet18", "imagenet21k")


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    return tmp_path


def test_random_weights_need_no_download_and_are_a_function_of_the_seed(empty_hub, monkeypatch):
    monkeypatch.setenv("CIRCADIAN_OFFLINE", "1")  # any download attempt would raise
    a, b, c = (build_backbone("resnet18", "random", seed=s) for s in (3, 3, 4))
    for (k, va), vb in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.net.conv1.weight, c.net.conv1.weight)
    assert a.identity()["weights"] == "random-init-seed3" != c.identity()["weights"]
    assert build_backbone("resnet18", "none", seed=3).identity()["weights"] == "random-init-seed3"  # the same
    assert not list(empty_hub.iterdir())  # nothing was fetched


def test_feature_artifact_loads_any_registered_dataset_by_name_with_random_weights(tmp_path, monkeypatch):
    """What a smoke profile does from params.yaml alone: a stand-in dataset by name, random-init weights."""
    from circadian_core.datasets import ArrayDataset, registry
    from circadian_vision.features import build_feature_artifact, load_features

    def stand_in(train_size: int = 6) -> ArrayDataset:
        rng = np.random.default_rng(0)
        imgs = rng.integers(0, 256, size=(train_size + 4, 32, 32, 3), dtype=np.uint8)
        y = np.arange(train_size + 4) % 2
        return ArrayDataset("test-cifar-shaped", imgs[:train_size], y[:train_size], imgs[train_size:], y[train_size:],
                            ["a", "b"])

    monkeypatch.setitem(registry._REGISTRY, "test-cifar-shaped", stand_in)  # registered for this test only
    monkeypatch.setenv("CIRCADIAN_OFFLINE", "1")
    out = tmp_path / "f.pt"
    build_feature_artifact({"dataset": {"name": "test-cifar-shaped", "train_size": 8},
                            "backbone": {"name": "resnet18", "weights": "random", "seed": 1}}, out=out)
    fs = load_features(out)
    assert fs.x_train.shape == (8, 512) and fs.x_test.shape == (4, 512)
    assert fs.spec["backbone"]["weights"] == "random-init-seed1" and fs.spec["dataset"]["name"] == "test-cifar-shaped"


def test_offline_imagenet_weights_error_names_file_and_mini(empty_hub, monkeypatch):
    monkeypatch.setenv("CIRCADIAN_OFFLINE", "1")
    with pytest.raises(BackboneUnavailableError) as err:
        build_backbone("resnet50", "imagenet")
    msg = str(err.value)
    assert "\n" not in msg
    assert "resnet50-11ad3fa6.pth" in msg and str(empty_hub / "checkpoints") in msg
    assert "weights: random" in msg and "mini profile" in msg


def test_failed_download_is_one_clear_error(empty_hub, monkeypatch):
    monkeypatch.delenv("CIRCADIAN_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(BackboneUnavailableError, match=r"could not get ImageNet weights for resnet18 .*place it at"):
        build_backbone("resnet18", "imagenet")


@pytest.mark.parametrize("online, fix", [(True, "delete it and rerun"), (False, "offline: replace it by hand")])
def test_corrupt_cached_weights_are_reported_not_used(empty_hub, monkeypatch, online, fix):
    from circadian_core.datasets import download

    monkeypatch.setattr(download, "network_available", lambda url, timeout=2.0: online)
    bad = empty_hub / "checkpoints" / "resnet18-f37072fd.pth"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ChecksumError, match=fix):
        build_backbone("resnet18", "imagenet")
    assert bad.exists()  # nothing the user placed is deleted


def test_digits_artifact_round_trip(tmp_path):
    out = tmp_path / "digits_cnn.pt"
    build_digits_backbone({"epochs": 2, "feature_dim": 32, "width": 8}, out=out)
    bb = load_backbone(out)
    assert bb.feature_dim == 32 and not bb.training
    assert not any(p.requires_grad for p in bb.parameters())
    assert bb.meta["trained_on"]["labels"] == [0, 1] and bb.meta["trained_on"]["task"] == 0
    assert len(bb.meta["weights_id"]) == 64
    x = np.random.default_rng(1).random((5, 8, 8), dtype=np.float32)
    f1 = bb.features(x)
    f2 = load_backbone(out).features(x[:, None])  # (N, 1, 8, 8) works too
    assert f1.shape == (5, 32) and torch.equal(f1, f2)


def test_digits_training_is_seeded():
    cfg = DigitsBackboneConfig(epochs=1, width=4, feature_dim=8)
    a, _ = train_digits_backbone(cfg)
    b, _ = train_digits_backbone(cfg)
    for (_, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb)


def test_load_backbone_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="build_artifact digits_cnn"):
        load_backbone(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="delete it and rebuild"):
        load_backbone(bad)
    with pytest.raises(ValueError, match="digits_cnn"):
        save_backbone(build_backbone("resnet18"), tmp_path / "r.pt")
    with pytest.raises(ConfigError, match="task must be"):
        build_digits_backbone({"task": 7}, out=tmp_path / "x.pt")


def test_untrained_digits_backbone_shapes():
    bb = digits_backbone(width=4, feature_dim=8).freeze()
    assert bb.features(np.zeros((2, 8, 8), np.float32)).shape == (2, 8)
