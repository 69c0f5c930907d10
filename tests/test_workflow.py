"""The two engines, one DAG: params.yaml -> Snakemake and DVC name the same runs; lint; profiles."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import yaml

from circadian_core.config import ConfigError
from pipelines import dag
from pipelines.scripts import dvcgen
from tests.workflow_helpers import BIN, ROOT, dvc_outputs, job_counts, run, snakemake_outputs


@pytest.mark.parametrize("profile", ["mini", "paper"])
def test_profiles_resolve(profile):
    p = dag.load_profile(profile)
    assert p.name == profile
    for study in p.studies.values():
        for variant in study.variants:
            assert isinstance(study.config(variant), dict)
    assert len(set(p.run_paths())) == len(p.cells())


def test_dvc_yaml_is_generated_from_params():
    proc = subprocess.run([sys.executable, "-m", "pipelines.scripts.dvcgen", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + "\n(run: make dvc-yaml)"


def test_dvc_yaml_parses_with_dvc():
    """DVC's own loader accepts the generated dvc.yaml and sees one stage per cell and artifact."""
    from dvc.repo import Repo

    repo = Repo(str(ROOT))
    names = {s.name for s in repo.index.stages if s.name}
    profile = dag.load_profile()
    expected = {dvcgen.cell_stage_name(c.study, c.variant, c.seed) for c in profile.cells()}
    assert expected <= names
    assert {"aggregate", "figures", "paper"} <= names


@pytest.mark.parametrize("profile", ["mini", "paper"])
def test_snakemake_and_dvc_name_the_same_runs(profile):
    """Every output of the Snakemake DAG is an output of a DVC stage and vice versa."""
    p = dag.load_profile(profile)
    snake = snakemake_outputs(ROOT, "--config", f"profile={profile}")
    dvc = dvc_outputs(dvcgen.build(p)["stages"])
    assert set(snake) == dvc
    runs = {path for path, rule in snake.items() if rule == "run_cell"}
    assert runs == set(p.run_paths())
    if profile == dag.active_profile_name():
        on_disk = yaml.safe_load((ROOT / "dvc.yaml").read_text())
        assert dvc_outputs(on_disk["stages"]) == set(snake)


def test_snakemake_lint_is_clean():
    proc = run([str(BIN / "snakemake"), "--lint"], ROOT, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


@pytest.mark.parametrize("profile_dir", ["local", "slurm"])
def test_dry_run_each_profile(profile_dir):
    proc = run(
        [str(BIN / "snakemake"), "-n", "--forceall", "--profile", f"pipelines/profiles/{profile_dir}"], ROOT
    )
    p = dag.load_profile()
    counts = job_counts(proc.stdout)
    assert counts["run_cell"] == len(p.cells())
    assert sum(v for k, v in counts.items() if k.startswith("artifact_")) == len(p.artifacts)
    assert {counts[k] for k in ("aggregate", "figures", "targets", "paper")} == {1}


def test_slurm_profile_routes_gpu_jobs():
    spec_gpu, spec_cpu = {"gpu": 1}, {}
    parts = {"cpu": "short", "gpu": "a100"}
    assert dag.slurm_partition(spec_gpu, parts) == "a100"
    assert dag.slurm_partition(spec_cpu, parts) == "short"
    assert dag.resources({"gpu": 1, "runtime_min": 90}) == {"gpu": 1, "mem_mb": 4000, "runtime": 90, "threads": 1}


def test_wrong_params_key_is_one_clear_error(tmp_path):
    bad = yaml.safe_load((ROOT / "params.yaml").read_text())
    bad["profiles"]["mini"]["devcie"] = "cpu"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match=r"devcie.*Fix that key"):
        dag.load_profile("mini", path)


def test_unknown_profile_names_the_choices():
    with pytest.raises(ConfigError, match="unknown profile 'nope'.*mini"):
        dag.load_profile("nope")


def test_run_cell_bad_variant_exits_with_one_line(tmp_path):
    p = dag.load_profile()
    assert p.studies, "the active profile defines no study"
    study = next(iter(p.studies))
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.scripts.run_cell", study, "no-such-variant", "1", "--out", str(tmp_path / "x.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "variants:" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


def test_latexmk_available_for_the_paper_stage():
    assert shutil.which("latexmk") and shutil.which("pdftotext"), "run `make tex` (TeX Live + poppler)"


def test_profile_keeps_only_the_artifacts_its_studies_need():
    """`paper` inherits mini's artifacts, but its studies point at the CIFAR/hub ones."""
    needed = set()
    p = dag.load_profile("paper")
    todo = [n for s in p.studies.values() for n in s.needs]
    while todo:
        n = todo.pop()
        needed.add(n)
        todo.extend(p.artifacts[n].needs)
    assert set(p.artifacts) == needed
    assert "digits_cnn" not in p.artifacts and "digits_cnn" in dag.load_profile("mini").artifacts
