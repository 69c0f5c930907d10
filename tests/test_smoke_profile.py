"""The smoke profile: the paper's studies, shapes and batch sizes on stand-ins, no download anywhere,
both engines name the same runs, and every learner carries a one-sided learning target."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from circadian_core.config import ConfigError
from pipelines import dag
from pipelines.scripts import dvcgen
from pipelines.scripts.check_targets import TARGETS, check, load_targets
from tests.workflow_helpers import BIN, ROOT, dvc_outputs, run, snakemake_outputs

DOWNLOADED_DATA = {"cifar10", "cifar100"}
# what the smoke profile may change in a study of `paper` (sizes, step counts, the stand-in inputs):
# anything else (models, widths, batch sizes, learning rates of the vision studies) must stay the paper's
CUT_KEYS = {
    "heads": {"epochs", "features"},
    "heads_ablation": {"epochs", "features"},
    "plastic": {"features", "data.dataset.name", "data.dataset.train_size", "data.dataset.test_size",
                "curriculum.steps", "curriculum.eval_every"},
    "hal": {"data.sequence", "data.test_size", "wake.epochs", "rem.steps"},
    "hal_seqcl": {"data.sequence", "data.test_size", "wake.epochs", "rem.steps"},
    "hal_extended": {"data.sequence", "data.test_size", "wake.epochs", "rem.steps"},
    "circadia": {"model", "nights", "night.store", "night.embedder", "night.train.iters", "night.train.lr",
                 "night.train.warmup", "night.dreams.bursts", "night.dreams.per_burst", "night.dreams.max_tokens",
                 "night.eval.harness_per_category", "night.eval.harness_max_tokens", "night.eval.old_core_items"},
}


def _flat(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _strings(obj: object) -> list[str]:
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(obj, (list, tuple)):
        return [s for v in obj for s in _strings(v)]
    return [obj] if isinstance(obj, str) else []


def test_smoke_runs_every_paper_study_with_the_papers_shapes():
    paper, smoke = dag.load_profile("paper"), dag.load_profile("smoke")
    assert set(smoke.studies) == set(paper.studies)
    for name, study in paper.studies.items():
        assert set(smoke.studies[name].variants) == set(study.variants)
        for variant in study.variants:
            a, b = _flat(study.config(variant)), _flat(smoke.studies[name].config(variant))
            changed = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
            assert changed <= CUT_KEYS.get(name, set()), f"{name}/{variant} changes {sorted(changed - CUT_KEYS.get(name, set()))}"


def test_smoke_downloads_nothing():
    smoke = dag.load_profile("smoke")
    configs = [s.config(v) for s in smoke.studies.values() for v in s.variants]
    configs += [a.config for a in smoke.artifacts.values()]
    words = set(_strings(configs))
    assert not words & DOWNLOADED_DATA
    assert "imagenet" not in words
    assert not [a for a in smoke.artifacts.values() if a.entry.startswith("circadia.models.hub:")]
    assert all(a.out.startswith("results/smoke/") for a in smoke.artifacts.values())
    assert {"synthetic-cifar10", "synthetic-cifar100", "random"} <= words


@pytest.mark.parametrize("profile", ["smoke", "smoke-cpu"])
def test_both_engines_name_the_same_smoke_runs(profile):
    """`snakemake -n` (the DAG of the default target) and the generated DVC stages agree cell by cell."""
    p = dag.load_profile(profile)
    snake = snakemake_outputs(ROOT, "--config", f"profile={profile}")
    assert set(snake) == dvc_outputs(dvcgen.build(p)["stages"])
    assert {path for path, rule in snake.items() if rule == "run_cell"} == set(p.run_paths())
    dry = run([str(BIN / "snakemake"), "-n", "--forceall", "--cores", "4", f"{p.results}/targets.json",
               "--config", f"profile={profile}"], ROOT)
    assert "artifact_circadia_llm_random" in dry.stdout and "targets" in dry.stdout


# studies whose cells are not "a learner on a stand-in": the continual-shift stress test (no download,
# the paper's own protocol, where forgetting is the measured outcome)
NO_LEARNING_TARGET = {"cpc_shift"}


def test_every_smoke_learner_has_a_learning_target():
    smoke = dag.load_profile("smoke")
    targets = load_targets("smoke", TARGETS)
    named = {(t.study, t.variant) for t in targets}
    for t in targets:
        assert t.study in smoke.studies and t.variant in smoke.studies[t.study].variants, t.label
        assert t.expected is None and (t.at_least is not None or t.at_most is not None), t.label
        assert t.note, t.label
    for study in set(smoke.studies) - NO_LEARNING_TARGET:
        lacking = {(study, v) for v in smoke.studies[study].variants} - named
        assert not lacking, f"add `smoke:` learning targets to pipelines/targets.yaml for {sorted(lacking)}"


def test_every_gpu_study_of_the_paper_is_cut_in_smoke():
    """A paper study that asks for a GPU and reaches smoke unchanged would run at paper length (hours):
    smoke must cut it (seeds, epochs, steps, sizes) to stay within 8 minutes on one GPU."""
    paper, smoke = dag.load_profile("paper"), dag.load_profile("smoke")
    for name, study in paper.studies.items():
        if not int(study.resources.get("gpu", 0)):
            continue
        cut = smoke.studies[name].seeds != study.seeds or any(
            smoke.studies[name].config(v) != study.config(v) for v in study.variants)
        assert cut, f"params.yaml profiles.smoke.studies.{name}: cut its seeds/epochs/sizes for the smoke profile"


def _write(tmp_path, entries):
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump({"smoke": entries}))
    return path


def test_one_sided_targets_hold_or_fail(tmp_path):
    runs = pd.DataFrame([{"study": "s", "variant": "v", "seed": s, "metric": "acc", "value": x}
                         for s, x in enumerate([0.30, 0.34])]
                        + [{"study": "s", "variant": "v", "seed": 0, "metric": "loss", "value": float("nan")}])
    path = _write(tmp_path, [
        {"study": "s", "variant": "v", "metric": "acc", "at_least": 0.3},
        {"study": "s", "variant": "v", "metric": "acc", "at_least": 0.33},
        {"study": "s", "variant": "v", "metric": "acc", "at_most": 0.3},
        {"study": "s", "variant": "v", "metric": "acc", "at_least": 0.1, "at_most": 0.5},
        {"study": "s", "variant": "v", "metric": "loss", "at_most": 1.0},
    ])
    outcomes = check("smoke", runs, path)
    assert [o.ok for o in outcomes] == [True, False, False, True, False]
    assert outcomes[0].to_json()["delta"] is None and json.dumps(outcomes[0].to_json())
    assert outcomes[1].target.describe() == ">= 0.33"


def test_one_sided_target_entries_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="give expected and tolerance, or at_least / at_most"):
        load_targets("smoke", _write(tmp_path, [{"study": "s", "variant": "v", "metric": "m"}]))
    with pytest.raises(ConfigError, match="together"):
        load_targets("smoke", _write(tmp_path, [{"study": "s", "variant": "v", "metric": "m", "expected": 1.0}]))


@pytest.mark.parametrize("profile", ["smoke", "smoke-cpu"])
def test_smoke_inputs_agree_between_artifacts_and_cells(profile):
    """The base eval scores the cells' night (its cache key) and the plastic cache holds the cells' data."""
    p = dag.load_profile(profile)
    night = p.artifacts["circadia_base_eval"].config["night"]
    assert all(p.studies["circadia"].config(v)["night"] == night for v in ("full",))
    plastic = p.studies["plastic"]
    assert plastic.config("plastic-brain")["data"]["dataset"] == p.artifacts[plastic.needs[0]].config["dataset"]
