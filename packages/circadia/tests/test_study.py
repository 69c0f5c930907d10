"""The pipeline study function and its base-eval artifact, on the tiny model."""

import json

import pytest

from circadia.studies import CONTRACT, build_base_eval, run
from circadian_core.config import ConfigError
from circadian_core.runner import run_cell


def _night(model_dir):
    return {"store": "numpy", "embedder": "hashing",
            "train": {"iters": 1, "batch_size": 2, "lr": 1e-3, "warmup": 0, "max_seq_len": 48},
            "dreams": {"bursts": 1, "per_burst": 1, "max_tokens": 4},
            "eval": {"harness_per_category": 1, "harness_max_tokens": 2, "old_core_items": 1}}


def test_study_cell_with_base_eval_artifact(tiny_model_dir, tmp_path, capfd):
    arts = {"smollm2_hf": tiny_model_dir}
    cfg = {"nights": 2, "model": "smollm2_hf", "night": _night(tiny_model_dir)}
    build_base_eval(cfg, out=tmp_path / "base.json", device="cpu", artifacts=arts)
    base = json.loads((tmp_path / "base.json").read_text())
    assert base["nights"] == 2 and base["n_heldout"] > 0 and "seconds" not in base["key"]["source"]
    assert len(base["heldout_sums"]) == base["n_heldout"] and base["key"]["dtype"] == "float32"
    arts["circadia_base_eval"] = tmp_path / "base.json"
    # through the runner, as the pipeline runs it: the record conforms to the contract and reads back typed
    rec = run_cell("circadia.studies:run", cfg, study="circadia", variant="full", seed=0, out=tmp_path / "rec.json",
                   device="cpu", workdir=tmp_path / "wd", artifacts=arts)
    typed = CONTRACT.parse(json.loads((tmp_path / "rec.json").read_text()))
    assert typed.settings.night.train.iters == 1 and typed.info.harness_items == 7
    assert [n.night for n in typed.info.night_records] == [1, 2] and typed.info.night_records[0].pre.cached
    assert {"night_seconds", "phase_train", "phase_post_eval", "wall_s"} <= set(typed.timings)
    assert "night_seconds" not in rec.metrics and "train_tokens_per_s" not in rec.metrics
    log = capfd.readouterr().err  # the cell's log shows its phases and training loss
    assert "night 1: pre " in log and "night 2: step 1/1 loss" in log and "night 2: ACCEPTED" in log
    res = run(cfg, seed=0, device="cpu", workdir=tmp_path / "wd", artifacts=arts)
    assert res.metrics == rec.metrics  # same seed, same CPU: identical metrics
    m = res.metrics
    assert m["heldout_loss_base"] == pytest.approx(base["heldout_loss"])
    assert m["harness_base"] == base["harness"]["pass_rate"]
    assert {"heldout_loss_final", "fact_recall", "forgetting", "rollbacks", "replay_fraction"} <= set(m)
    assert m["secrets_redacted"] >= 2 and m["stored_turns"] > 0
    assert [h["night"] for h in res.history] == [1, 2]
    assert res.info.night_records[0].pre.cached is True  # night 1 read the artifact
    # the same cell without the artifact measures the same base numbers itself
    res2 = run({**cfg, "base_eval": None}, seed=0, device="cpu", workdir=tmp_path / "wd2", artifacts={"smollm2_hf": tiny_model_dir})
    assert res2.metrics["heldout_loss_base"] == pytest.approx(m["heldout_loss_base"], abs=1e-5)
    assert res2.metrics["harness_base"] == m["harness_base"]
    assert res2.metrics["heldout_loss_final"] == pytest.approx(m["heldout_loss_final"], abs=1e-5)


def test_bad_settings_and_missing_artifacts_fail_before_any_compute(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'threads'"):  # one thread knob: resources.threads
        run_cell("circadia.studies:run", {"night": {"threads": 1}}, study="circadia", variant="v", seed=0,
                 out=tmp_path / "r.json", device="cpu", artifacts={})
    with pytest.raises(ConfigError, match="add 'circadia_base_eval' to the study's `needs`"):
        run({"model": str(tmp_path)}, seed=0, device="cpu", workdir=tmp_path / "wd", artifacts={})
    assert not (tmp_path / "r.json").exists()


def test_study_rejects_mismatched_artifact(tiny_model_dir, tmp_path):
    arts = {"smollm2_hf": tiny_model_dir}
    night = _night(tiny_model_dir)
    build_base_eval({"nights": 1, "night": night}, out=tmp_path / "base.json", device="cpu", artifacts=arts)
    other = {**night, "eval": {**night["eval"], "harness_max_tokens": 3}}
    with pytest.raises(ConfigError, match="same eval settings"):
        run({"nights": 1, "night": other}, seed=0, device="cpu", workdir=tmp_path / "wd",
            artifacts={**arts, "circadia_base_eval": tmp_path / "base.json"})
