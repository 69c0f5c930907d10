"""Snakemake as its users run it: `snakemake --report` holds the tables, figures, metrics and PDF,
every rule writes a benchmark, plot data has no Snakemake markers, `make repro`'s Snakemake run plus
`dvc commit` leaves DVC with nothing to do, and the conda env resolves from any --conda-prefix."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.dvc_toy import dvc, make_dvc_toy
from tests.workflow_helpers import BIN, ROOT, run

ENV_FILE = ROOT / "pipelines/envs/circadian.yaml"
POST_DEPLOY = ROOT / "pipelines/envs/circadian.post-deploy.sh"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The toy DVC project built by Snakemake alone (as `make repro` does)."""
    repo = make_dvc_toy(tmp_path_factory.mktemp("snaketoy"))
    run([str(BIN / "snakemake"), "--cores", "2", "--quiet", "rules"], repo)
    return repo


@pytest.mark.slow
def test_report_holds_tables_figures_metrics_and_the_pdf(built, tmp_path):
    report = tmp_path / "report.zip"
    run([str(BIN / "snakemake"), "--report", str(report)], built)
    names = [n for n in zipfile.ZipFile(report).namelist() if "/data/raw/" in n or n.endswith((".png", ".csv", ".pdf", ".json"))]
    basenames = {Path(n).name for n in names}
    assert {"toy_acc.png", "summary.csv", "main.pdf", "toy.json", "targets.json"} <= basenames, sorted(basenames)


@pytest.mark.slow
def test_every_rule_that_ran_wrote_its_benchmark(built):
    bench = built / "results/toy/benchmarks"
    expected = {
        "configs.tsv", "artifact-toy_prior.tsv", "aggregate.tsv", "dvc_metrics.tsv", "figures.tsv",
        "targets.tsv", "paper.tsv", "run_cell/toy/plain/seed1.tsv", "run_cell/toy_copy/only/seed1.tsv",
    }
    found = {p.relative_to(bench).as_posix() for p in bench.rglob("*.tsv")}
    assert expected <= found
    header = (bench / "aggregate.tsv").read_text().splitlines()[0].split("\t")
    assert header[:2] == ["s", "h:m:s"] and "max_rss" in header


@pytest.mark.slow
def test_plot_data_has_no_snakemake_marker_and_dvc_commit_makes_repro_a_noop(built):
    """`make repro` = Snakemake, then `dvc commit`: DVC then has nothing to run, and the marker file
    Snakemake leaves in directory outputs is never part of what DVC hashes (.dvcignore)."""
    assert sorted(p.name for p in (built / "results/toy/plots").iterdir()) == ["toy.csv", "toy_copy.csv"]
    figures = built / "results/toy/figures"
    assert (figures / ".snakemake_timestamp").exists()  # Snakemake's, in its directory() outputs
    dvc(built, "commit", "--force", "--quiet", "dvc.yaml")
    assert "Running stage" not in dvc(built, "repro").stdout
    assert "up to date" in dvc(built, "status", "dvc.yaml").stdout
    lock = yaml.safe_load((built / "dvc.lock").read_text())
    outs = {o["path"]: o for s in lock["stages"].values() for o in s.get("outs", [])}
    real = [p for p in figures.iterdir() if p.name != ".snakemake_timestamp"]
    assert outs["results/toy/figures"]["nfiles"] == len(real)


def _pip_lines() -> list[str]:
    env = yaml.safe_load(ENV_FILE.read_text())
    pips = [d for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pips) == 1
    return pips[0]["pip"]


def test_conda_env_resolves_from_any_conda_prefix(tmp_path, monkeypatch):
    """Snakemake copies the env file into --conda-prefix and conda hands its pip section to pip from
    there: every path must resolve from that folder (pip expands ${CIRCADIAN_ROOT}, set by the
    Snakefile), none relative to it."""
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import parse_requirements

    lines = _pip_lines()
    assert all("${CIRCADIAN_ROOT}/" in line for line in lines)
    prefix = tmp_path / "cluster" / "conda-envs"  # an arbitrary --conda-prefix, far from the repository
    prefix.mkdir(parents=True)
    reqs = prefix / "condaenv.requirements.txt"  # what conda writes next to the copied env file
    reqs.write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(prefix)
    monkeypatch.setenv("CIRCADIAN_ROOT", str(ROOT))
    parsed = list(parse_requirements(str(reqs), session=PipSession(), constraint=False))
    editable = {Path(r.requirement) for r in parsed if r.is_editable}
    assert editable == {ROOT / "packages" / p for p in ("circadian-core", "circadian-vision", "hal-sleep-wake", "circadia")}
    assert all((p / "pyproject.toml").exists() for p in editable)
    assert {"torch", "dvc", "snakemake"} <= {r.requirement.split("[")[0].split(";")[0].strip() for r in parsed}
    monkeypatch.delenv("CIRCADIAN_ROOT")
    with pytest.raises(Exception, match="No such file|Could not open|does not exist"):
        list(parse_requirements(str(reqs), session=PipSession()))


def test_post_deploy_installs_the_embedded_wheels_without_deps(tmp_path):
    """The env's post-deploy script (run by Snakemake inside the new env) installs
    requirements/embedded.txt with --no-deps, by absolute path."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\n')
    (fake / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "CIRCADIAN_ROOT": str(ROOT)}
    shutil.copy2(POST_DEPLOY, tmp_path / "env.post-deploy.sh")  # Snakemake runs a copy, too
    subprocess.run(["bash", str(tmp_path / "env.post-deploy.sh")], cwd=tmp_path, env=env, check=True)
    args = (tmp_path / "args").read_text().split()
    assert args[:3] == ["-m", "pip", "install"] and "--no-deps" in args
    assert Path(args[args.index("-r") + 1]) == ROOT / "requirements/embedded.txt"
    env.pop("CIRCADIAN_ROOT")
    assert subprocess.run(["bash", str(POST_DEPLOY)], cwd=tmp_path, env=env, capture_output=True).returncode != 0
