"""The generated DVC pipelines, without running DVC: one file per profile, one reader of params.yaml,
everything cached, inherited artifacts built once, and `extends` inheritance in params.yaml."""

from __future__ import annotations

import pytest
import yaml

from circadian_core.config import ConfigError
from pipelines import dag
from pipelines.scripts import dvcgen
from tests.workflow_helpers import ROOT

TWO_PROFILES = """\
profile: a
profiles:
  a:
    device: cpu
    artifacts:
      prior: {entry: tests.toy_artifact:build_prior, out: results/a/prior.json, config: {classes: 10}}
    studies:
      toy:
        entry: tests.toy_study:run
        needs: [prior]
        seeds: [1]
        base: {n_tasks: 5}
        variants: {plain: {}}
  b:
    inherits: a
    studies:
      toy: {seeds: [1, 2]}
"""


def _pipelines() -> dict[str, dict]:
    return {rel: yaml.safe_load((ROOT / rel).read_text()) for rel in dvcgen.expected_files()}


def test_one_pipeline_file_per_profile():
    files = _pipelines()
    assert set(files) == {dvcgen.pipeline_file(p) for p in dvcgen.profile_names()}
    assert dvcgen.pipeline_file(dag._raw(str(dag.PARAMS))["profile"]) == "dvc.yaml"
    for rel, data in files.items():
        if rel != "dvc.yaml":  # stages of other profiles run from the repository root
            assert {s.get("wdir") for s in data["stages"].values()} == {"../../.."}


def test_only_the_configs_stage_reads_params_yaml():
    """DVC parses params.yaml once per stage that lists params (about 60 ms each): one reader."""
    for rel, data in _pipelines().items():
        readers = [name for name, stage in data["stages"].items() if stage.get("params")]
        assert readers == ["configs"], rel


def test_configs_stage_tracks_every_key_of_the_profile_chain():
    keys = set(dvcgen.tracked_params("paper"))
    raw = dag._raw(str(dag.PARAMS))["profiles"]
    for profile in ("mini", "paper"):
        for study in raw[profile].get("studies") or {}:
            assert f"profiles.{profile}.studies.{study}" in keys
        assert f"profiles.{profile}.device" in keys
    assert not any(k.endswith((".description", ".inherits")) for k in keys)


def test_every_output_is_cached_and_every_cell_depends_on_its_config():
    for rel, data in _pipelines().items():
        assert "cache: false" not in (ROOT / rel).read_text()
        for name, stage in data["stages"].items():
            if name.startswith(("run-", "artifact-")):
                assert any("/configs/" in d for d in stage["deps"]), (rel, name)


def test_an_inherited_artifact_is_built_by_its_base_profile_only(tmp_path, monkeypatch):
    params = tmp_path / "params.yaml"
    params.write_text(TWO_PROFILES)
    monkeypatch.setattr(dag, "PARAMS", params)
    monkeypatch.setattr(dvcgen, "PARAMS", params)
    b = dvcgen.build(dag.load_profile("b"))["stages"]
    assert "artifact-prior" not in b  # pipelines/dvc/b depends on pipeline a's stage
    assert "results/a/prior.json" in b["run-toy-plain-s2"]["deps"]
    assert "artifact-prior" in dvcgen.build(dag.load_profile("a"))["stages"]
    changed = tmp_path / "changed.yaml"  # (params files are cached by path)
    changed.write_text(TWO_PROFILES + "    artifacts:\n      prior: {entry: tests.toy_artifact:build_prior, "
                       "out: results/a/prior.json, config: {classes: 5}}\n")
    monkeypatch.setattr(dag, "PARAMS", changed)
    monkeypatch.setattr(dvcgen, "PARAMS", changed)
    with pytest.raises(ConfigError, match="writes the same file results/a/prior.json; give it its own `out`"):
        dvcgen.build(dag.load_profile("b"))


def test_extends_inherits_and_overrides_and_names_bad_paths():
    tree = {
        "studies": {
            "heads": {"base": {"lr": 0.1, "circadian": {"hidden": 32, "prune": {"fraction": 0.7}}}},
            "ablation": {"base": {"extends": "studies.heads.base", "head": "circadian", "circadian": {"hidden": 16}}},
            "chained": {"base": {"extends": "studies.ablation.base", "lr": 0.2}},
        }
    }
    out = dag.resolve_extends(tree)["studies"]
    assert out["ablation"]["base"] == {"lr": 0.1, "head": "circadian", "circadian": {"hidden": 16, "prune": {"fraction": 0.7}}}
    assert out["chained"]["base"]["lr"] == 0.2 and out["chained"]["base"]["circadian"]["hidden"] == 16
    assert "extends" not in str(out)
    with pytest.raises(ConfigError, match="names nothing: studies.heads has no 'bse'"):
        dag.resolve_extends({"studies": {"heads": {"base": {}}, "x": {"base": {"extends": "studies.heads.bse"}}}})
    with pytest.raises(ConfigError, match="loops back"):
        dag.resolve_extends({"s": {"a": {"extends": "s.b"}, "b": {"extends": "s.a"}}})


def test_extends_resolves_in_the_profile_being_run(tmp_path, monkeypatch):
    """An inheriting profile's override of the parent section reaches the section that extends it."""
    copy_study = (
        "      copy:\n        entry: tests.toy_study:run\n        seeds: [1]\n"
        "        base: {extends: studies.toy.base, shrink: 0.5}\n        variants: {only: {}}\n"
    )
    text = TWO_PROFILES.replace("        variants: {plain: {}}\n", "        variants: {plain: {}}\n" + copy_study)
    text = text.replace("      toy: {seeds: [1, 2]}", "      toy: {seeds: [1, 2], base: {n_tasks: 3}}")
    params = tmp_path / "params.yaml"
    params.write_text(text)
    monkeypatch.setattr(dag, "PARAMS", params)
    assert dag.load_profile("a").studies["copy"].config("only") == {"n_tasks": 5, "shrink": 0.5}
    assert dag.load_profile("b").studies["copy"].config("only") == {"n_tasks": 3, "shrink": 0.5}


def test_code_fingerprint_follows_the_source_not_bytecode(tmp_path):
    from pipelines.scripts.dvc_configs import fingerprint

    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    first = fingerprint("pkg", tmp_path)
    fingerprint.cache_clear()
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (pkg / "sub" / "b.pyc").write_bytes(b"\0")
    assert fingerprint("pkg", tmp_path) == first  # running the code changes nothing
    fingerprint.cache_clear()
    (pkg / "sub" / "b.py").write_text("y = 3\n")
    assert fingerprint("pkg", tmp_path) != first
    fingerprint.cache_clear()
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    (pkg / "sub" / "c.py").write_text("")
    assert fingerprint("pkg", tmp_path) != first  # a new module counts

