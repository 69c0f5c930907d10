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
from circadian_vision.studies.heads import CONTRACT, holdout_split, run

FAST = {"epochs": 2, "latency_repeats": 3, "predictive_coding": {"hidden": 8, "inference_steps": 2},
        "circadian": {"hidden": 8, "min_hidden": 4, "max_hidden": 16, "inference_steps": 2,
                      "trigger": {"kind": "fixed", "every": 20}}}


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
    assert CONTRACT.check_metrics(m) == []
    assert 0.0 <= m["accuracy"] <= 1.0 and m["cross_entropy"] > 0
    # wall-clock measurements are timings, never metrics (issue 16): a rerun gives identical metrics
    assert not {"train_sps", "infer_p50_ms", "infer_p95_ms", "sleep_overhead"} & set(m)
    t = res.timings
    assert t["train_sps"] > 0 and 0 < t["infer_p50_ms"] <= t["infer_p95_ms"]
    assert m["params"] > 0 and m["params_start"] > 0
    assert len(res.history["accuracy"]) == 2 and res.history["epoch"] == [1, 2]
    assert res.info["features"]["key"] == load_features(artifacts["digits_features"]).key
    assert res.info["split"]["holdout"] > 0
    if head == "circadian":
        assert {"splits", "prunes", "rollbacks", "sleeps", "hidden_start", "hidden_end", "distinct_end"} <= set(m)
        assert m["sleeps"] == len(res.info["events"]) >= 1 and m["distinct_end"] <= m["hidden_end"]
        assert all("hidden_after" in e for e in res.info["events"]) and "sleep_overhead" in t
    else:
        assert m["sleeps"] is None and m["distinct_end"] is None  # declared "not applicable"


def test_same_seed_same_result_other_seed_differs(artifacts):
    a = run({**FAST, "head": "circadian"}, seed=1, artifacts=artifacts)
    b = run({**FAST, "head": "circadian"}, seed=1, artifacts=artifacts)
    c = run({**FAST, "head": "circadian"}, seed=2, artifacts=artifacts)
    assert a.history == b.history and a.metrics == b.metrics  # every metric, bit for bit
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
    with pytest.raises(ConfigError, match="`needs`"):
        run({"features": "cifar100_resnet50_imagenet"}, seed=0, artifacts=artifacts)
    with pytest.raises(ConfigError, match="heads: backprop, predictive_coding, circadian"):
        run({"head": "hebbian"}, seed=0, artifacts=artifacts)
