"""A CPU slice of the smoke DAG: one cell per study family of ``smoke-cpu`` (the smoke profile at CPU
sizes), its artifacts built first, all into a scratch folder, through the same entries and configs the
engines run. The whole smoke-cpu DAG runs in `benchmarks/gpu_check.sh --cpu`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from circadian_core.runner import resolve_entry, run_cell
from pipelines import dag

PROFILE = "smoke-cpu"


def _build(profile: dag.Profile, name: str, root: Path, built: dict[str, Path]) -> Path:
    """Artifact ``name`` (and what it needs) built into ``root`` by its entry, as build_artifact does."""
    if name not in built:
        art = profile.artifacts[name]
        deps = {n: _build(profile, n, root, built) for n in art.needs}
        out = root / Path(art.out).name
        resolve_entry(art.entry)(dict(art.config), out=out, device="cpu", artifacts=deps)
        assert out.exists(), f"artifact {name} did not create {out}"
        built[name] = out
    return built[name]


def _run(study: str, variant: str, tmp_path: Path) -> dict:
    profile = dag.load_profile(PROFILE)
    spec = profile.studies[study]
    built: dict[str, Path] = {}
    artifacts = {n: _build(profile, n, tmp_path / "artifacts", built) for n in spec.needs}
    seed = spec.seeds[0]
    out = tmp_path / "runs" / f"{study}-{variant}.json"
    run_cell(spec.entry, spec.config(variant), study=study, variant=variant, seed=seed, out=out,
             device=profile.device, workdir=tmp_path / "work", artifacts=artifacts, threads=1)
    record = json.loads(out.read_text())
    assert record["config"] == spec.config(variant) and record["device"] == "cpu"
    values = [v for v in record["metrics"].values() if v is not None]
    assert values and all(math.isfinite(v) for v in values)
    return record["metrics"]


def test_cpc_cell(tmp_path):
    m = _run("cpc_toy", "circadian", tmp_path)
    assert m["accuracy"] > 0.7  # no stand-in: the paper's own toy protocol, learned as in mini


@pytest.mark.slow
def test_heads_cell_on_random_resnet50_features_of_the_stand_in(tmp_path):
    m = _run("heads", "circadian", tmp_path)
    assert 0.0 <= m["accuracy"] <= 1.0


@pytest.mark.slow
def test_plastic_cell_on_random_resnet18_features_of_the_stand_in(tmp_path):
    m = _run("plastic", "plastic-brain", tmp_path)
    assert m["acc.phase1.after_phase1"] > 1 / 6  # the 6 animal stand-in classes, learned above chance


@pytest.mark.slow
def test_hal_cell_on_the_cifar_stand_ins(tmp_path):
    m = _run("hal", "sleep", tmp_path)
    assert m["til_first_task_learned"] is not None and m["cil_first_task_learned"] is not None


@pytest.mark.slow
def test_hal_seqcl_cell_on_the_cifar10_stand_in(tmp_path):
    m = _run("hal_seqcl", "derpp-200", tmp_path)
    assert m["cil_acc"] is not None and m["til_acc"] is not None


@pytest.mark.slow
def test_circadia_cell_on_the_random_init_model(tmp_path):
    m = _run("circadia", "full", tmp_path)
    assert m["heldout_loss_base"] > math.log(49152) - 0.5  # random init: at chance before sleeping
    assert m["heldout_loss_delta"] < 0  # and it learns from its nights
