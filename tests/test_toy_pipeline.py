"""The whole path on a scratch copy of the workflow with a seconds-long study: Snakemake and DVC
produce records, tables, figures and a PDF that quotes every generated number; reruns are minimal."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from circadian_core.record import read_record
from tests.workflow_helpers import BIN, job_counts, make_toy_repo, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(toy_repo):
    run([str(BIN / "snakemake"), "--cores", "2"], toy_repo)
    return toy_repo


def test_records_tables_figures_and_pdf_exist(built):
    runs = sorted((built / "results/toy/runs").rglob("seed*.json"))
    assert len(runs) == 4
    rec = read_record(runs[0])
    assert {"config", "metrics", "history", "timings", "device", "versions", "git_sha"} <= set(rec)
    assert (built / "results/toy/tables/summary.csv").exists()
    metrics = json.loads((built / "results/toy/tables/metrics.json").read_text())
    assert set(metrics["toy"]) == {"plain", "shrunk"}
    assert (built / "results/toy/figures/toy_acc.png").exists()
    assert (built / "paper/generated/toy/figures/toy_acc.pdf").exists()
    assert (built / "paper/build/toy/main.pdf").stat().st_size > 10_000


def test_every_generated_number_is_in_the_pdf(built):
    from pipelines.scripts.build_paper import check_numbers, pdf_text, read_macros

    pdf = built / "paper/build/toy/main.pdf"
    macros = read_macros(built / "paper/generated/toy/macros.tex")
    assert macros["toyPlainAccMean"] in pdf_text(pdf)
    assert check_numbers(pdf, built / "paper/generated/toy/macros.tex") == []


def test_check_catches_a_number_missing_from_the_pdf(built, tmp_path):
    from pipelines.scripts.build_paper import check_numbers

    extra = tmp_path / "macros.tex"
    extra.write_text((built / "paper/generated/toy/macros.tex").read_text() + "\\newcommand{\\notQuoted}{0.12345}\n")
    problems = check_numbers(built / "paper/build/toy/main.pdf", extra)
    assert len(problems) == 1 and "notQuoted" in problems[0]


def test_deleting_a_macro_the_text_uses_fails_the_paper_build(built):
    macros = built / "paper/generated/toy/macros.tex"
    original = macros.read_text()
    try:
        macros.write_text("".join(line for line in original.splitlines(keepends=True) if "toyPlainAccMean" not in line))
        proc = run([str(BIN / "python"), "-m", "pipelines.scripts.build_paper", "--profile", "toy"], built, check=False)
        assert proc.returncode != 0 and "Undefined control sequence" in proc.stderr
    finally:
        macros.write_text(original)
        shutil.rmtree(built / "paper/build/toy", ignore_errors=True)  # the next build starts clean
        run([str(BIN / "python"), "-m", "pipelines.scripts.build_paper", "--profile", "toy"], built)


GATED_STUDY = """\
import time
from pathlib import Path

from circadian_core.record import StudyResult


def run(config, *, seed, device, workdir, artifacts):
    Path("started").touch()
    deadline = time.time() + 120
    while not Path("release").exists() and time.time() < deadline:  # held until the test lets it finish
        time.sleep(0.05)
    return StudyResult(metrics={"x": 1.0})
"""


def test_a_second_snakemake_run_on_a_locked_folder_is_refused(tmp_path):
    import subprocess
    import time

    from tests.workflow_helpers import env

    repo = make_toy_repo(tmp_path)
    (repo / "tests" / "gated.py").write_text(GATED_STUDY)
    params = repo / "params.yaml"
    params.write_text(params.read_text() + "      gated: {entry: tests.gated:run, seeds: [1], variants: {v: {}}}\n")
    cell = "results/toy/runs/gated/v/seed1.json"
    first = subprocess.Popen([str(BIN / "snakemake"), "--cores", "1", cell], cwd=repo, env=env(),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while not (repo / "started").exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert (repo / "started").exists(), "the first run never started its job"
        second = run([str(BIN / "snakemake"), "--cores", "1", cell], repo, check=False)
        assert second.returncode != 0 and "cannot be locked" in second.stdout + second.stderr
    finally:
        (repo / "release").touch()
        out = first.communicate(timeout=300)[0]
    assert first.returncode == 0, out[-3000:]
    assert read_record(repo / cell)["seed"] == 1


def test_a_missing_record_names_the_command_that_makes_it(built, tmp_path):
    record = built / "results/toy/runs/toy/shrunk/seed2.json"
    kept = tmp_path / "seed2.json"
    record.rename(kept)
    try:
        proc = run([str(BIN / "python"), "-m", "pipelines.scripts.aggregate", "--profile", "toy"], built, check=False)
        assert proc.returncode == 2
        assert proc.stderr.strip() == ("error: 1 run record(s) missing, e.g. results/toy/runs/toy/shrunk/seed2.json; "
                                       "run them first (snakemake results/toy/runs/toy/shrunk/seed2.json, or dvc repro)")
    finally:
        kept.rename(record)


def test_rerun_of_one_seed_reruns_only_it_and_its_dependents(built):
    out = run([str(BIN / "snakemake"), "-n", "--forcerun", "results/toy/runs/toy/plain/seed1.json"], built).stdout
    assert job_counts(out) == {"run_cell": 1, "aggregate": 1, "dvc_metrics": 1, "targets": 1, "figures": 1, "paper": 1, "all": 1}
    assert "Nothing to be done" in run([str(BIN / "snakemake"), "-n"], built).stdout


def test_changing_one_variant_reruns_only_its_cells(built):
    params = built / "params.yaml"
    original = params.read_text()
    try:
        params.write_text(original.replace("shrink: 0.5", "shrink: 0.6"))
        out = run([str(BIN / "snakemake"), "-n"], built).stdout
        counts = job_counts(out)
        assert counts["run_cell"] == 2
        rerun = set(re.findall(r"output: results/toy/runs/toy/(\w+)/seed\d+\.json", out))
        assert rerun == {"shrunk"}
    finally:
        params.write_text(original)


def test_dvc_repro_then_noop_and_minimal_rerun(tmp_path_factory):
    repo = make_toy_repo(tmp_path_factory.mktemp("dvcrepo"))
    dvc = str(BIN / "dvc")
    run([str(BIN / "python"), "-m", "pipelines.scripts.dvcgen"], repo)
    run([dvc, "init", "-q"], repo)
    run([dvc, "config", "core.analytics", "false"], repo)
    first = run([dvc, "repro"], repo).stdout
    assert "Running stage 'paper'" in first
    assert (repo / "paper/build/toy/main.pdf").exists()
    second = run([dvc, "repro"], repo).stdout
    assert "Running stage" not in second
    assert "up to date" in run([dvc, "status"], repo).stdout
    # Snakemake agrees that DVC's outputs are current, and reruns one seed minimally on top of them
    snake = str(BIN / "snakemake")
    assert "Nothing to be done" in run([snake, "-n"], repo).stdout
    forced = run([snake, "-n", "--forcerun", "results/toy/runs/toy/plain/seed2.json"], repo).stdout
    assert job_counts(forced) == {"run_cell": 1, "aggregate": 1, "dvc_metrics": 1, "targets": 1, "figures": 1, "paper": 1, "all": 1}
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("shrink: 0.5", "shrink: 0.6"))
    assert "configs:" in run([dvc, "status"], repo).stdout  # the one stage that reads params.yaml
    run([dvc, "repro", "configs"], repo)  # rewrites the resolved configs: the cells follow
    changed = run([dvc, "status"], repo).stdout
    stale = {line.strip().rstrip(":") for line in changed.splitlines() if line and not line.startswith(("\t", " "))}
    assert {"run-toy-shrunk-s1", "run-toy-shrunk-s2"} <= stale
    assert not any(s.startswith("run-toy-plain") for s in stale)
    shutil.rmtree(repo, ignore_errors=True)
