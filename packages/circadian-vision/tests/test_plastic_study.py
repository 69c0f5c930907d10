"""The plastic study: a protocol with no test leakage, its artifact, its metrics, and the eyes."""

import json

import numpy as np
import pytest
import torch

from circadian_core.datasets.digits import digits
from circadian_vision.backbones import BackboneUnavailableError
from circadian_vision.plastic import PretrainedEyes, RandomProjectionEyes
from circadian_vision.studies import plastic as study

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bank():
    return study.compute_features(digits(), RandomProjectionEyes((8, 8), feature_dim=16, seed=0))


TINY = {
    "model": "plastic_brain",
    "eyes": {"kind": "random_projection", "feature_dim": 16},
    "curriculum": {"steps": [6, 6, 6], "batch_size": 8, "eval_every": 3},
    "plastic": {"num_layers": 1, "block": {"hidden_dim": 32, "k": 4}, "memory_size": 200, "warmup_steps": 2},
    "triarchic": {"hidden_dim": 64, "k": 4},
}


def test_storm_is_trained_on_training_images_and_scored_on_disjoint_test_images(bank):
    data = digits()
    cur = study.build_curriculum(bank, study.DataConfig())
    train, test = cur.train["storm"], cur.eval["storm"]
    assert (train.split, train.inverted) == ("train", True)
    assert (test.split, test.inverted) == ("test", True)
    eyes = RandomProjectionEyes((8, 8), feature_dim=16, seed=0)
    # the storm's training inputs are the inverted TRAINING images, its score the inverted TEST images
    x_train, y_train = train.take(bank)
    x_test, y_test = test.take(bank)
    assert torch.allclose(x_train, eyes.features(1.0 - data.x_train[train.indices.numpy()]), atol=1e-5)
    assert torch.allclose(x_test, eyes.features(1.0 - data.x_test[test.indices.numpy()]), atol=1e-5)
    assert torch.equal(y_test, torch.as_tensor(data.y_test[test.indices.numpy()]))
    # no scored image is one the storm trained on (by content, not only by index)
    trained = {img.tobytes() for img in (1.0 - data.x_train[train.indices.numpy()]).astype(np.float32)}
    scored = [img.tobytes() for img in (1.0 - data.x_test[test.indices.numpy()]).astype(np.float32)]
    assert not any(s in trained for s in scored)
    # every clean phase trains on training rows of its own group and is scored on test rows
    for name, group in (("phase1", range(5)), ("phase2", range(5, 10))):
        assert cur.train[name].split == "train" and cur.eval[name].split == "test"
        assert set(bank.y_train[cur.train[name].indices].tolist()) == set(group)
        assert set(bank.y_test[cur.eval[name].indices].tolist()) == set(group)
    assert cur.eval["storm_train"].split == "train"  # the prototype's score, kept apart and named so


def test_curriculum_rejects_overlapping_groups(bank):
    with pytest.raises(Exception, match="disjoint"):
        study.build_curriculum(bank, study.DataConfig(groups=[[0, 1], [1, 2]]))
    with pytest.raises(Exception, match="storm_classes"):
        study.build_curriculum(bank, study.DataConfig(storm_classes="some"))


def test_invert_colours():
    assert study.invert(np.array([0, 200], dtype=np.uint8)).tolist() == [255, 55]
    assert study.invert(np.array([0.25], dtype=np.float32)).tolist() == [0.75]


def test_centering_uses_phase1_training_features_only(bank):
    cur = study.build_curriculum(bank, study.DataConfig())
    centred = study.center_features(bank, cur, "phase1")
    assert torch.allclose(centred.x_train[cur.train["phase1"].indices].mean(0), torch.zeros(16), atol=1e-5)
    mu = bank.x_train[cur.train["phase1"].indices].mean(0)
    assert torch.allclose(centred.x_test_inv, bank.x_test_inv - mu)
    assert study.center_features(bank, cur, "none") is bank


@pytest.mark.parametrize("model", study.MODELS)
def test_run_records_per_phase_metrics_and_is_deterministic(model):
    cfg = {**TINY, "model": model}
    a = study.run(cfg, seed=0)
    b = study.run(cfg, seed=0)
    assert json.dumps(a.metrics, sort_keys=True) == json.dumps(b.metrics, sort_keys=True)
    assert json.dumps(a.history, sort_keys=True) == json.dumps(b.history, sort_keys=True)
    m = a.metrics
    assert study.CONTRACT.check_metrics(m) == []  # every declared metric, finite or a declared null
    for phase in study.PHASES:
        assert f"adapt_steps.{phase}" in m and f"core_drift.{phase}" in m
        for s in ("phase1", "phase2", "storm", "storm_train"):
            assert 0.0 <= m[f"acc.{s}.after_{phase}"] <= 1.0
    for key in ("retention.after_phase2", "retention.after_storm", "sparsity", "storm_gap", "cl.acc", "cl.bwt"):
        assert key in m
    assert len(a.history["acc_before"]) == 18
    assert a.info["curriculum"]["eval"]["storm"] == {"split": "test", "inverted": True, "n": 450}
    if model == "triarchic":
        assert m["acc.phase1@core.after_storm"] is not None and m["context_energy.storm"] > 0
        core = m["acc.phase1@core.after_phase2"] / m["acc.phase1@core.after_phase1"]
        assert m["retention_core.after_phase2"] == pytest.approx(core)  # core alone, as the prototype reports
    else:
        assert m["retention_core.after_phase2"] is None and m["acc.phase1@core.after_phase2"] is None
    if model == "naive_linear":
        assert m["sparsity"] == 1.0 and m["context_energy.spike"] is None
    assert a.info["stream"] == sum(TINY["curriculum"]["steps"]) * TINY["curriculum"]["batch_size"]


def test_learners_are_a_registry(monkeypatch):
    assert set(study.LEARNERS) == {"plastic_brain", "triarchic", "naive_linear"} == set(study.MODELS)

    class Echo(study.NaiveLinearHead):
        pass

    monkeypatch.setitem(study.LEARNERS, "echo", study.LearnerSpec(Echo, "naive"))
    cfg = study.from_dict(study.PlasticStudyConfig, {"model": "echo"})
    assert isinstance(study.make_learner(cfg, 8, 3, seed=0), Echo)  # a new learner is one registry entry


def test_feature_artifact_round_trip(tmp_path):
    out = tmp_path / "features.pt"
    cfg = {"dataset": {"name": "digits"}, "eyes": {"kind": "random_projection", "feature_dim": 16}}
    study.build_features(cfg, out=out)
    bank = study.load_feature_bank(out, {"name": "digits"})
    assert bank.x_train_inv.shape == (1347, 16) and bank.x_test.shape == (450, 16)
    with pytest.raises(ValueError, match="another dataset"):
        study.load_feature_bank(out, {"name": "cifar10"})
    run = study.run({**TINY, "features": "feats", "curriculum": {**TINY["curriculum"], "steps": [2, 2, 2]}},
                    seed=0, artifacts={"feats": out})
    assert run.info["eyes"]["name"] == "random_projection"
    with pytest.raises(Exception, match="needs"):
        study.run({**TINY, "features": "feats"}, seed=0, artifacts={})


def test_unknown_keys_and_models_are_config_errors():
    with pytest.raises(Exception, match="unknown key"):
        study.run({**TINY, "modle": "x"}, seed=0)
    with pytest.raises(Exception, match="unknown model"):
        study.run({**TINY, "model": "hippocampus"}, seed=0)
    with pytest.raises(Exception, match="digits_cnn"):
        study.run({**TINY, "eyes": {"kind": "digits_cnn"}}, seed=0, artifacts={})


def test_pretrained_eyes_offline_error_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CIRCADIAN_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(BackboneUnavailableError, match=r"resnet18-.*\.pth"):
        PretrainedEyes.resnet18("imagenet")


def test_pretrained_eyes_are_frozen_and_load_a_saved_backbone(tmp_path):
    from circadian_vision.backbones import digits_backbone, save_backbone

    path = save_backbone(digits_backbone(width=4, feature_dim=8), tmp_path / "cnn.pt")
    eyes = PretrainedEyes.from_file(path)
    assert eyes.feature_dim == 8
    assert all(not p.requires_grad for p in eyes.parameters())
    assert eyes.features(np.random.default_rng(0).random((3, 8, 8), dtype=np.float32)).shape == (3, 8)
    random18 = PretrainedEyes.resnet18("none", image_size=None)
    assert random18.features(np.zeros((2, 32, 32, 3), dtype=np.uint8)).shape == (2, 512)
