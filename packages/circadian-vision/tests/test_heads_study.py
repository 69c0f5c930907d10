"""The heads study on a digits_cnn feature cache built as the pipeline builds it, and its DAG cells."""

from __future__ import annotations

import pytest
import torch

from circadian_core.config import ConfigError
from circadian_vision.backbones import (
    DigitsBackboneConfig,
    load_backbone,
    save_backbone,
    train_digits_backbone,
)
from circadian_vision.features import build_feature_artifact, load_features
from circadian_vision.studies.heads import holdout_split, run
from pipelines.dag import load_profile

FAST = {"epochs": 2, "latency_repeats": 3, "predictive_coding": {"hidden": 8, "inference_steps": 2},
        "circadian": {"hidden": 8, "min_hidden": 4, "max_hidden": 16, "inference_steps": 2,
                      "trigger": {"kind": "fixed", "every": 20}}}


def _as_dict(v):
    return v if isinstance(v, dict) else {"": v}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("heads_artifacts")
    backbone, info = train_digits_backbone(DigitsBackboneConfig(epochs=2, width=4, feature_dim=16))
    cnn = save_backbone(backbone, root / "digits_cnn.pt", trained_on=info)
    feats = root / "digits_features.pt"
    build_feature_artifact({"dataset": {"name": "digits"}, "backbone": {"name": "digits_cnn"}},
                           out=feats, artifacts={"digits_cnn": cnn})
    return {"digits_cnn": cnn, "digits_features": feats}


@pytest.mark.parametrize("head", ["backprop", "predictive_coding", "circadian"])
def test_each_head_runs_and_records_what_the_paper_needs(head, artifacts):
    res = run({**FAST, "head": head}, seed=0, artifacts=artifacts)
    m = res.metrics
    assert 0.0 <= m["accuracy"] <= 1.0 and m["cross_entropy"] > 0
    assert m["train_sps"] > 0 and 0 < m["infer_p50_ms"] <= m["infer_p95_ms"]
    assert m["params"] > 0 and m["params_start"] > 0
    assert len(res.history["accuracy"]) == 2 and res.history["epoch"] == [1, 2]
    assert res.info["features"]["key"] == load_features(artifacts["digits_features"]).key
    assert res.info["split"]["holdout"] > 0
    if head == "circadian":
        assert {"splits", "prunes", "rollbacks", "sleeps", "hidden_start", "hidden_end", "sleep_overhead"} <= set(m)
        assert m["sleeps"] == len(res.info["events"]) >= 1
        assert all("hidden_after" in e for e in res.info["events"])


def test_same_seed_same_result_other_seed_differs(artifacts):
    a = run({**FAST, "head": "circadian"}, seed=1, artifacts=artifacts)
    b = run({**FAST, "head": "circadian"}, seed=1, artifacts=artifacts)
    c = run({**FAST, "head": "circadian"}, seed=2, artifacts=artifacts)
    assert a.history == b.history and a.metrics["accuracy"] == b.metrics["accuracy"]
    assert a.history["train_loss"] != c.history["train_loss"]


def test_finetune_bypasses_the_cache_and_trains_the_backbone(artifacts):
    res = run({"head": "backprop", "epochs": 1, "latency_repeats": 2, "backprop": {"finetune": True}},
              seed=0, artifacts=artifacts)
    assert res.info["features"]["cache_bypassed"] is True
    assert res.metrics["backbone_params"] > 0
    # the saved backbone artifact itself is untouched
    before = load_backbone(artifacts["digits_cnn"])
    assert not any(p.requires_grad for p in before.parameters())


def test_holdout_is_stratified_seeded_and_disjoint():
    y = torch.arange(10).repeat(20)
    tr, ho = holdout_split(y, 0.1, seed=3)
    assert len(ho) == 20 and set(tr.tolist()).isdisjoint(ho.tolist()) and len(tr) + len(ho) == 200
    assert torch.bincount(y[ho]).tolist() == [2] * 10
    assert torch.equal(ho, holdout_split(y, 0.1, seed=3)[1]) and not torch.equal(ho, holdout_split(y, 0.1, seed=4)[1])


def test_config_errors_name_the_fix(artifacts):
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        run({"epoch": 3}, seed=0, artifacts=artifacts)
    with pytest.raises(ConfigError, match="under `needs`"):
        run({"features": "cifar100_resnet50_imagenet"}, seed=0, artifacts=artifacts)
    with pytest.raises(ConfigError, match="heads: backprop, predictive_coding, circadian"):
        run({"head": "hebbian"}, seed=0, artifacts=artifacts)


def test_params_define_heads_and_ablation_cells():
    for name in ("mini", "paper"):
        prof = load_profile(name)
        heads, abl = prof.studies["heads"], prof.studies["heads_ablation"]
        assert set(heads.variants) == {"backprop", "predictive-coding", "circadian"}
        assert set(abl.variants) == {"no-split", "no-prune", "no-rollback", "no-replay", "no-reward", "fixed-trigger"}
        assert len(heads.seeds) >= 3 and len(abl.seeds) >= 3
        switched = {  # variant -> (mechanism block, key, value)
            "no-split": ("split", "enabled", False), "no-prune": ("prune", "enabled", False),
            "no-rollback": ("rollback", "enabled", False), "no-replay": ("replay", "enabled", False),
            "no-reward": ("reward", "enabled", False), "fixed-trigger": ("trigger", "kind", "fixed"),
        }
        full = heads.config("circadian")["circadian"]
        for variant, (block, key, value) in switched.items():
            cfg = abl.config(variant)
            assert cfg["head"] == "circadian" and cfg["circadian"][block][key] == value
            # exactly one switch differs from the full circadian head
            diff = {(b, k) for b in set(cfg["circadian"]) | set(full)
                    for k in set(_as_dict(cfg["circadian"].get(b))) | set(_as_dict(full.get(b)))
                    if _as_dict(cfg["circadian"].get(b)).get(k) != _as_dict(full.get(b)).get(k)}
            assert diff == {(block, key)}, (name, variant, diff)
    assert load_profile("paper").studies["heads"].config("circadian")["epochs"] == 12
