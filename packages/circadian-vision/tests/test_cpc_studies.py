"""The cpc_toy and cpc_shift studies: metrics and their definitions, determinism, params.yaml cells."""

from __future__ import annotations

import numpy as np
import pytest

from circadian_core.config import ConfigError
from circadian_vision.nets import NETS
from circadian_vision.shift_tasks import (
    PROFILES,
    PROTO_PROFILES,
    continual_shift_task,
    make_shift_task,
    shift_task_config,
)
from circadian_vision.studies import continual_shift, cpc_toy

FAST_SHIFT = {"epochs_a": 4, "epochs_b": 6, "eval_every": 2,
              "task": {"n_train_per_class": 60, "n_test_per_class": 50, "b_train_fraction": 0.3},
              "predictive_coding": {"hidden": 8, "inference_steps": 5, "inference_lr": 0.2},
              "circadian": {"hidden": 8, "min_hidden": 4, "max_hidden": 16, "inference_steps": 5,
                            "inference_lr": 0.2, "trigger": {"kind": "fixed", "every": 5}}}


@pytest.mark.parametrize("model", list(NETS))
@pytest.mark.parametrize("profile", list(PROFILES))
def test_shift_study_metrics_and_definitions(model, profile):
    cfg = {**FAST_SHIFT, "model": model, "task": {**FAST_SHIFT["task"], "profile": profile}}
    res = continual_shift.run(cfg, seed=3)
    m = res.metrics
    assert continual_shift.CONTRACT.check_metrics(m) == []
    for k in ("A_pre", "B_pre", "A_post", "B_post", "retention", "balanced"):
        assert 0.0 <= m[k] <= 1.0 + 1e-12 or k == "retention"
    assert m["retention"] == pytest.approx(m["A_post"] / m["A_pre"])
    assert m["balanced"] == pytest.approx((m["A_post"] + m["B_post"]) / 2)
    assert m["bwt"] == pytest.approx(m["A_post"] - m["A_pre"])
    assert res.info["accuracy_matrix"] == [[m["A_pre"], m["B_pre"]], [m["A_post"], m["B_post"]]]
    h = res.history
    assert h["epoch"] == [2, 4, 6, 8, 10] and h["phase"] == ["A", "A", "B", "B", "B"]
    assert {len(v) for v in h.values()} == {5}
    assert h["acc_a"][1] == m["A_pre"] and h["acc_b"][-1] == m["B_post"]
    if model == "circadian":
        assert m["sleeps"] == len(res.info["events"]) >= 1
        assert h["hidden"][-1] == m["hidden_end"] and h["sleeps"][-1] == m["sleeps"]
        assert m["hidden_end"] == m["hidden_start"] + m["splits"] - m["prunes"]
        assert m["distinct_end"] <= m["hidden_end"] and m["structural_sleeps"] <= m["sleeps"]
    else:  # circadian-only metrics are declared "not applicable"
        assert m["sleeps"] is None and m["distinct_end"] is None and m["hidden_end"] == m["hidden_start"]


def test_shift_profiles_differ_as_described():
    s, h = shift_task_config({"profile": "strength-case"}), shift_task_config({"profile": "hardest-case"})
    assert h.rotation_deg > s.rotation_deg and h.noise_b_mult > s.noise_b_mult
    assert h.b_train_fraction < s.b_train_fraction
    task = continual_shift_task(h, np.random.default_rng(0))
    per_class = np.bincount(task.b.y_train) + np.bincount(task.b.y_holdout)
    assert list(per_class) == [12, 12]  # class-balanced small fraction: 0.06 x 200 per class
    assert shift_task_config({"profile": "hardest-case", "noise": 2.0}).noise == 2.0
    with pytest.raises(ConfigError, match="unknown profile"):
        shift_task_config({"profile": "easiest"})


def test_same_seed_same_result_other_seed_differs():
    cfg = {**FAST_SHIFT, "model": "circadian"}
    a, b = continual_shift.run(cfg, seed=7), continual_shift.run(cfg, seed=7)
    c = continual_shift.run(cfg, seed=11)
    assert a.metrics == b.metrics and a.history == b.history  # every metric, bit for bit

    def untimed(events):
        return [{k: v for k, v in e.items() if k != "seconds"} for e in events]

    assert untimed(a.info["events"]) == untimed(b.info["events"])
    assert a.history["train_loss"] != c.history["train_loss"]


@pytest.mark.parametrize("model", list(NETS))
def test_toy_study_learns(model):
    res = cpc_toy.run({"model": model, "epochs": 8, "task": {"n_train_per_class": 100, "n_test_per_class": 200},
                       "circadian": {"hidden": 8, "trigger": {"kind": "fixed", "every": 10}}}, seed=3)
    assert res.metrics["accuracy"] > 0.8  # chance is 0.5
    assert len(res.history["accuracy"]) == 8
    if model == "circadian":
        assert res.metrics["sleeps"] >= 1


def test_strict_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="epochs_b"):
        continual_shift.run({"epoch_b": 3}, seed=0)
    with pytest.raises(ConfigError, match="unknown model"):
        cpc_toy.run({"model": "svm"}, seed=0)


# ---- the prototype's own continual shift ---------------------------------------------------------
def test_proto_tasks_are_the_prototypes_data():
    hard, task = make_shift_task({"profile": "proto-hardest"}, 3)
    assert (hard.dim, hard.rotation_deg, hard.translation, hard.noise_b) == (2, 68.0, (1.6, -1.3), 1.45)
    assert task.a.sizes() == {"train": 525, "holdout": 0, "test": 175}  # 700 rows, 25% test, nothing held out
    assert task.b.sizes() == {"train": 26, "holdout": 0, "test": 175}  # max(8, int(0.05 x 525)) rows of phase B
    assert np.bincount(task.b.y_train).tolist() == [13, 13]  # class-balanced
    # phase A: two clusters at (-1.2, -1) and (1.2, 1); phase B: rotated by 68 degrees and translated
    for cls, centre in ((0, (-1.2, -1.0)), (1, (1.2, 1.0))):
        np.testing.assert_allclose(task.a.x_test[task.a.y_test == cls].mean(0), centre, atol=0.25)
        t = np.deg2rad(68.0)
        moved = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ np.array(centre) + (1.6, -1.3)
        np.testing.assert_allclose(task.b.x_test[task.b.y_test == cls].mean(0), moved, atol=0.45)
    again = make_shift_task({"profile": "proto-hardest"}, 3)[1]
    assert np.array_equal(again.a.x_train, task.a.x_train) and np.array_equal(again.b.x_train, task.b.x_train)
    other = make_shift_task({"profile": "proto-hardest"}, 7)[1]
    assert not np.array_equal(other.a.x_train, task.a.x_train)
    strength = make_shift_task({"profile": "proto-strength"}, 3)[1]
    assert strength.a.sizes()["train"] == 375 and strength.b.sizes()["train"] == 52  # int(0.14 x 375)
    assert set(PROTO_PROFILES) == {"proto-strength", "proto-hardest"}
    with pytest.raises(ConfigError, match="unknown key 'dim'"):
        make_shift_task({"profile": "proto-hardest", "dim": 6}, 3)


PROTO_HARDEST = {
    "task": {"profile": "proto-hardest"}, "epochs_a": 120, "epochs_b": 180, "batch_size": None,
    "sleep_every": [40, 6], "eval_every": 60,
    "circadian": {"hidden": 24, "trunk": [24, 24], "init_std": 0.5, "binary": True, "lr": 0.05,
                  "inference_steps": 5, "inference_lr": 0.2, "min_hidden": 4, "max_hidden": 96,
                  "reward": {"enabled": False}, "prune": {"enabled": False}, "rollback": {"enabled": False},
                  "budget": {"split": 2, "prune": 0, "replay_steps": 1, "adaptive": False, "split_until": 0.85,
                             "prune_from": 0.5}},
}


def test_proto_schedule_forced_sleeps_and_growth_as_the_prototype():
    res = continual_shift.run({**PROTO_HARDEST, "model": "circadian"}, seed=3)
    m, events = res.metrics, res.info["events"]
    # forced sleeps after epochs 40, 80, 120 of phase A and every 6 epochs of phase B; from 85% of the
    # 300 epochs on (epoch >= 255) the windows leave nothing to do and the sleep is skipped
    steps = [e["step"] for e in events]
    assert steps == [40, 80, 120, *range(126, 301, 6)]
    kept = [e for e in events if not e["skipped"]]
    assert [e["step"] for e in kept] == [40, 80, 120, *range(126, 255, 6)]
    assert m["sleeps"] == len(kept) == 25 and m["structural_sleeps"] == 25
    assert m["splits"] == 50 and m["hidden_end"] == 24 + 50 == m["hidden_start"] + m["splits"]
    assert m["hidden_start"] == 24 and m["params"] > 3 * 24 * 24  # three hidden layers of 24 (the last grows)
