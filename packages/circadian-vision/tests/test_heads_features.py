"""Feature cache: content key, reuse, clear errors, and bit-for-bit equality with on-the-fly training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from circadian_core.datasets import load_dataset
from circadian_vision import features as F
from circadian_vision.backbones import build_backbone, digits_backbone, save_backbone
from circadian_vision.heads import fit, make_head


def _digits_bb(tmp_path):
    torch.manual_seed(0)
    return save_backbone(digits_backbone(width=4, feature_dim=16), tmp_path / "digits_cnn.pt")


def test_content_key_tracks_dataset_weights_and_preprocessing(tmp_path):
    torch.manual_seed(0)
    bb = build_backbone("resnet18")
    k = F.content_key({"name": "cifar10"}, bb)
    assert k == F.content_key({"name": "cifar10"}, bb)
    assert k != F.content_key({"name": "cifar100"}, bb)
    assert k != F.content_key({"name": "cifar10", "train_size": 100}, bb)
    assert k != F.content_key({"name": "cifar10"}, build_backbone("resnet18", image_size=64))
    assert k != F.content_key({"name": "cifar10"}, build_backbone("resnet50"))
    # a digits_cnn artifact is identified by its file's sha256: other weights, other key
    a = F.resolve_backbone(F.BackboneSpec(name="digits_cnn"), {"digits_cnn": _digits_bb(tmp_path)})
    torch.manual_seed(1)
    other = save_backbone(digits_backbone(width=4, feature_dim=16), tmp_path / "other.pt")
    b = F.resolve_backbone(F.BackboneSpec(name="digits_cnn"), {"digits_cnn": other})
    assert F.content_key({"name": "digits"}, a) != F.content_key({"name": "digits"}, b)


def test_cached_features_computed_once_then_reused(tmp_path, monkeypatch):
    arts = {"digits_cnn": _digits_bb(tmp_path)}
    spec = {"dataset": {"name": "digits"}, "backbone": {"name": "digits_cnn"}}
    first = F.cached_features(spec, tmp_path / "cache", artifacts=arts, progress=False)
    assert first.x_train.shape == (1347, 16) and first.x_test.shape == (450, 16)
    assert (tmp_path / "cache" / f"{first.key}.pt").exists()

    def boom(*a, **k):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(F, "compute_features", boom)
    again = F.cached_features(spec, tmp_path / "cache", artifacts=arts, progress=False)
    assert again.key == first.key and torch.equal(again.x_train, first.x_train)
    assert again.spec["source"]["backbone"]["name"] == "digits_cnn"


def test_load_features_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="build_artifact"):
        F.load_features(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="delete it and rebuild"):
        F.load_features(tmp_path / "bad.pt")
    arts = {"digits_cnn": _digits_bb(tmp_path)}
    F.build_feature_artifact({"dataset": {"name": "digits"}, "backbone": {"name": "digits_cnn"}},
                             out=tmp_path / "f.pt", artifacts=arts)
    with pytest.raises(ValueError, match="different dataset, backbone"):
        F.load_features(tmp_path / "f.pt", expected_key="0" * 64)


def test_unknown_backbone_in_spec_names_needs():
    from circadian_core.config import ConfigError

    with pytest.raises(ConfigError, match="add 'digits_cnn' to the study's `needs`"):
        F.resolve_backbone(F.BackboneSpec(name="digits_cnn"), {})


def _same_params(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("head_name", ["backprop", "predictive_coding"])
def test_cached_training_equals_on_the_fly_bit_for_bit_digits_cnn(head_name, tmp_path):
    arts = {"digits_cnn": _digits_bb(tmp_path)}
    spec = {"dataset": {"name": "digits"}, "backbone": {"name": "digits_cnn"}, "batch_size": 128}
    fs = F.compute_features(spec, artifacts=arts, progress=False)
    bb = F.resolve_backbone(F.BackboneSpec(name="digits_cnn"), arts)
    images = torch.as_tensor(load_dataset("digits").x_train)
    y = fs.y_train

    def train(x, featurize):
        head = make_head(head_name, 16, 10, {}, seed=3)
        fit(head, x, y, epochs=2, batch_size=32, generator=torch.Generator().manual_seed(5), featurize=featurize)
        return head

    cached = train(fs.x_train, None)
    on_the_fly = train(images, lambda imgs: bb(bb.preprocess(imgs)))
    assert _same_params(cached, on_the_fly)


def test_cached_training_equals_on_the_fly_bit_for_bit_resnet18():
    torch.manual_seed(0)
    bb = build_backbone("resnet18", "none").freeze()
    rng = np.random.default_rng(0)
    images = torch.as_tensor(rng.integers(0, 256, size=(96, 32, 32, 3), dtype=np.uint8))
    y = torch.as_tensor(rng.integers(0, 10, size=96))
    cache = bb.features(images, batch_size=48)  # extracted in other batches than training uses

    def train(x, featurize):
        head = make_head("predictive_coding", 512, 10, {"hidden": 16}, seed=0)
        fit(head, x, y, epochs=2, batch_size=32, generator=torch.Generator().manual_seed(1), featurize=featurize)
        return head

    assert _same_params(train(cache, None), train(images, lambda imgs: bb(bb.preprocess(imgs))))
