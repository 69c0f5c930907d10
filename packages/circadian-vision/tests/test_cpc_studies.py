"""The cpc_toy and cpc_shift studies: metrics and their definitions, determinism, params.yaml cells."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from circadian_core.config import ConfigError, from_dict
from circadian_vision.nets import NETS
from circadian_vision.shift_tasks import PROFILES, continual_shift_task, shift_task_config
from circadian_vision.studies import continual_shift, cpc_toy
from pipelines.dag import ROOT, load_profile

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
    else:
        assert m["sleeps"] == 0 and m["hidden_end"] == m["hidden_start"]


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
    assert a.metrics == b.metrics and a.history == b.history

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


def test_every_mini_and_paper_cell_has_a_valid_config():
    for name in ("mini", "paper"):
        profile = load_profile(name)
        for study_name, cls in (("cpc_toy", cpc_toy.ToyStudyConfig), ("cpc_shift", continual_shift.ShiftStudyConfig)):
            study = profile.studies[study_name]
            assert study.entry.startswith(f"circadian_vision.studies.{cls.__module__.rsplit('.', 1)[-1]}:")
            for variant in study.variants:
                cfg = from_dict(cls, study.config(variant), where=f"{study_name}/{variant}")
                net_cls = NETS[cfg.model]
                from_dict(net_cls.config_class, getattr(cfg, cfg.model), where=variant)  # type: ignore[attr-defined]
                if study_name == "cpc_shift":
                    task = shift_task_config(cfg.task)
                    assert task.profile == variant.split("-")[0] + "-case"
    shift = load_profile("mini").studies["cpc_shift"]
    assert list(shift.seeds) == [3, 7, 11, 19, 23, 31, 37]
    assert from_dict(continual_shift.ShiftStudyConfig, shift.config("hardest-circadian")).circadian["hidden"] == 24


def test_a_cell_runs_in_a_fresh_process_without_torch(tmp_path):
    out = tmp_path / "seed3.json"
    code = (
        "import sys\n"
        "from pipelines.scripts.run_cell import main\n"
        "rc = main(['cpc_shift', 'hardest-pc', '3', '--out', sys.argv[1]])\n"
        "assert 'torch' not in sys.modules, 'the NumPy study imported torch'\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(Path(out).read_text())
    assert rec["study"] == "cpc_shift" and rec["metrics"]["hidden_start"] == 24
    assert rec["info"]["task"]["profile"] == "hardest-case"
