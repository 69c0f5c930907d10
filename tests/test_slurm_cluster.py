"""pipelines/profiles/slurm against a real one-node SLURM with accounting (slurmdbd on MariaDB).

tests/cluster/start_slurm.sh brings the cluster up in a scratch folder with the names the profile
assumes (account `circadian`, partitions `cpu` and `gpu`); cells of the mini profile's cpc_toy study
then run through `snakemake --profile pipelines/profiles/slurm`, unmodified, in a scratch copy of the
workflow. One run (--keep-going) holds the good cells, a cell with a mistyped config key and a slow
cell that the test cancels with scancel while it runs; a second run with --rerun-incomplete must
then rerun only the cancelled cell. Checked: every record (same metrics as a local run of the cell),
every cell log and SLURM log, slurmdbd's accounting row of every job (partition, account, CPUs,
memory, time limit, GPU), the failure report (SLURM state, SLURM log path, exit status), and that
nothing half-written is left. Needs root and the Debian packages of .ci/cluster_setup.sh; without
them it is skipped, except under CI=true, where it fails.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from circadian_core.record import read_record
from pipelines import dag
from tests.cluster import slurm_cluster
from tests.workflow_helpers import BIN, env, make_toy_repo

pytestmark = pytest.mark.slow

PROFILE = "cluster"
ACCOUNT = "circadian"
# The executor's defaults wait 40 s before the first status query; a one-node cluster answers at once.
FAST_STATUS = ["--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1"]
# SLURM logs of successful jobs are deleted by default; keep them to check them.
SNAKEMAKE = ["--profile", "pipelines/profiles/slurm", *FAST_STATUS, "--slurm-keep-successful-logs"]
THREADS_GPU = min(2, os.cpu_count() or 1)
RESOURCES = {
    "cpc_toy": {"mem_mb": 1000, "runtime_min": 5},
    "cpc_toy_gpu": {"gpu": 1, "threads": THREADS_GPU, "mem_mb": 1500, "runtime_min": 7},
}
GOOD = [("cpc_toy", "backprop", 3), ("cpc_toy", "predictive-coding", 7), ("cpc_toy_gpu", "backprop", 3)]
BROKEN = ("cpc_toy", "broken", 3)
LONG = ("cpc_toy", "long", 3)
LONG_EPOCHS = 2000  # seconds of compute: long enough to be cancelled while it runs


def cluster_params() -> dict:
    """params.yaml of the scratch workflow: cpc_toy as the mini profile defines it, plus a copy that
    asks for a GPU, a variant with a mistyped key and a slow variant."""
    mini = dag.load_profile("mini").studies["cpc_toy"]
    variants = {v: mini.variants[v] for v in ("backprop", "predictive-coding")}
    variants["broken"] = {"model": "backprop", "epochz": 3}
    variants["long"] = {"model": "backprop", "epochs": LONG_EPOCHS}
    studies = {
        "cpc_toy": {"entry": mini.entry, "seeds": [3, 7], "base": mini.base, "variants": variants},
        "cpc_toy_gpu": {"entry": mini.entry, "seeds": [3], "base": mini.base, "variants": {"backprop": mini.variants["backprop"]}},
    }
    for name, study in studies.items():
        study["resources"] = RESOURCES[name]
    return {"profile": PROFILE, "profiles": {PROFILE: {"device": "cpu", "studies": studies}}}


def run_path(cell: tuple[str, str, int]) -> str:
    study, variant, seed = cell
    return f"results/{PROFILE}/runs/{study}/{variant}/seed{seed}.json"


def cell_log(cell: tuple[str, str, int]) -> str:
    study, variant, seed = cell
    return f"results/{PROFILE}/logs/{study}/{variant}/seed{seed}.log"


def slurm_job_of(jobs: dict[str, Path], cell: tuple[str, str, int]) -> tuple[str, Path]:
    """The SLURM job id and log of ``cell`` (the executor names the log folder after the wildcards)."""
    found = [(jid, log) for jid, log in jobs.items() if log.parent.name == "_".join(map(str, cell))]
    assert len(found) == 1, f"expected one SLURM job for {cell}, got {found} from {jobs}"
    return found[0]


def snakemake(cluster: slurm_cluster.Cluster, repo: Path, *args: str) -> str:
    """Run Snakemake with the SLURM profile; its whole output (the log goes to stderr)."""
    proc = subprocess.run(
        [str(BIN / "snakemake"), *SNAKEMAKE, *args], cwd=repo, env=cluster.env, capture_output=True, text=True, timeout=300
    )
    return f"exit status {proc.returncode}\n{proc.stdout}{proc.stderr}"


def stray_files(repo: Path, expected: list[tuple[str, str, int]]) -> set[str]:
    """Files under the runs folder other than the records of ``expected`` (temporaries, leftovers)."""
    runs = repo / "results" / PROFILE / "runs"
    present = {str(p.relative_to(repo)) for p in runs.rglob("*") if p.is_file()}
    return present - {run_path(c) for c in expected}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = slurm_cluster.missing_requirements()
    if why:
        if os.environ.get("CI", "").lower() in {"true", "1", "yes"}:
            pytest.fail(f"CI is set but the SLURM test cluster cannot start: {why}")
        pytest.skip(why)
    root = tmp_path_factory.mktemp("slurm")
    if len(str(root)) > 80:  # unix socket paths (munge, MariaDB) must stay under 108 bytes
        root = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))
    try:
        running = slurm_cluster.start(root, env())
    except RuntimeError as err:
        pytest.fail(str(err))
    yield running
    pids = running.daemon_pids()
    slurm_cluster.stop(root, purge=True)
    assert len(pids) >= 5 and not [p for p in pids if Path(f"/proc/{p}").exists()], f"daemons left running: {pids}"
    assert not root.exists()


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = make_toy_repo(tmp_path_factory.mktemp("slurmrepo"))
    (repo / "params.yaml").write_text(yaml.safe_dump(cluster_params(), sort_keys=False))
    return repo


@dataclasses.dataclass
class FirstRun:
    output: str
    cancelled: str  # the SLURM job id of the cell scancel stopped
    cell_log_at_cancel: str
    record_at_cancel: bool


def cancel_when_running(cluster, repo: Path, proc: subprocess.Popen, cell, timeout: float = 150) -> FirstRun:
    """Wait until ``cell``'s job runs the cell (its cell log exists), then scancel it."""
    folder = repo / ".snakemake" / "slurm_logs" / "rule_run_cell" / "_".join(map(str, cell))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "snakemake ended before the cell to cancel started"
        logs = sorted(folder.glob("*.log")) if folder.is_dir() else []
        if logs and (repo / cell_log(cell)).exists():
            jobid = logs[0].stem
            states = {j["id"]: j["state"] for j in cluster.squeue()}
            assert states.get(jobid) == "RUNNING", states
            cluster.run(["scancel", jobid])
            return FirstRun("", jobid, (repo / cell_log(cell)).read_text(), (repo / run_path(cell)).exists())
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"{cell} did not start within {timeout}s")


@pytest.fixture(scope="module")
def first_run(cluster, repo, tmp_path_factory) -> FirstRun:
    """One run (--keep-going) of every cell: the good ones, the broken one and the long one, which
    is cancelled while it runs."""
    out_file = tmp_path_factory.mktemp("first") / "snakemake.out"
    with open(out_file, "w") as fh:
        proc = subprocess.Popen(
            [str(BIN / "snakemake"), *SNAKEMAKE, "--keep-going", *map(run_path, [*GOOD, BROKEN, LONG])],
            cwd=repo, env=cluster.env, stdout=fh, stderr=subprocess.STDOUT, text=True,
        )
        try:
            result = cancel_when_running(cluster, repo, proc, LONG)
            rc = proc.wait(timeout=240)
        finally:
            if proc.poll() is None:
                proc.kill()
    result.output = f"exit status {rc}\n{out_file.read_text()}"
    return result


def local_metrics(repo: Path, cell: tuple[str, str, int], tmp_path: Path) -> dict:
    """The metrics of ``cell`` run here, outside SLURM, with the same command the rule runs."""
    out = tmp_path / f"{'-'.join(map(str, cell))}.json"
    subprocess.run(
        [str(BIN / "python"), "-m", "pipelines.scripts.run_cell", *map(str, cell), "--profile", PROFILE, "--out", str(out)],
        cwd=repo, env=env(), check=True, capture_output=True, timeout=120,
    )
    return read_record(out)["metrics"]


def test_cells_run_through_the_profile_and_are_accounted(first_run, cluster, repo, tmp_path):
    """Every good cell: its record (same metrics as a local run), its log, its SLURM log, its sacct row."""
    out = first_run.output
    jobs = slurm_cluster.submitted_jobs(out)
    assert len(jobs) == len(GOOD) + 2, out[-4000:]
    assert "3 of 5 steps (60%) done" in out and "4 of 5 steps" not in out, out[-4000:]  # the good cells
    run_id = re.search(r"SLURM run ID: (\S+)", out).group(1)
    rows = cluster.sacct(list(jobs))
    profile = dag.load_profile(PROFILE, repo / "params.yaml")
    for cell in GOOD:
        study, variant, seed = cell
        spec = dag.resources(RESOURCES[study])
        record = read_record(repo / run_path(cell))
        assert (record["study"], record["variant"], record["seed"]) == cell
        assert record["config"] == profile.studies[study].config(variant)
        assert record["device"] == "cpu"
        assert record["metrics"] == local_metrics(repo, cell, tmp_path), f"{cell}: SLURM and local runs differ"
        assert f"{study}/{variant}/seed{seed}: accuracy=" in (repo / cell_log(cell)).read_text()
        jobid, slurm_log = slurm_job_of(jobs, cell)
        text = slurm_log.read_text()
        assert "1 of 1 steps (100%) done" in text and "error" not in text.lower(), text[-3000:]
        row = rows[jobid]
        assert (row["State"], row["ExitCode"], row["JobName"]) == ("COMPLETED", "0:0", run_id), row
        assert row["Partition"] == ("gpu" if spec["gpu"] else "cpu"), row
        assert row["Account"] == ACCOUNT, row
        assert (row["AllocCPUS"], row["ReqMem"]) == (str(spec["threads"]), f"{spec['mem_mb']}M"), row
        assert row["Timelimit"] == f"00:{spec['runtime']:02d}:00", row
        assert ("gres/gpu=1" in row["AllocTRES"]) == bool(spec["gpu"]), row
    assert not stray_files(repo, GOOD)
    for warning in ("not able to get a SLURM account", "Unable to get the status", "Falling back to 'sacct'"):
        assert warning not in out


def test_gpu_cell_went_to_the_gpu_partition_with_a_gpu(first_run, cluster):
    out = first_run.output
    jobid, _ = slurm_job_of(slurm_cluster.submitted_jobs(out), ("cpc_toy_gpu", "backprop", 3))
    assert re.search(r"wildcards: study=cpc_toy_gpu, .*?slurm_partition=gpu\n", out, re.S)
    row = cluster.sacct([jobid])[jobid]
    assert row["Partition"] == "gpu" and "gres/gpu=1" in row["AllocTRES"], row


def test_wrong_config_fails_with_its_slurm_log_and_exit_status(first_run, cluster, repo):
    out = first_run.output
    assert not out.startswith("exit status 0\n"), out[-4000:]
    jobid, slurm_log = slurm_job_of(slurm_cluster.submitted_jobs(out), BROKEN)
    # the report names the SLURM job, its state and its log, and shows the cell's error and exit status
    assert f"SLURM-job '{jobid}' failed, SLURM status is: 'FAILED'" in out, out[-6000:]
    assert re.search(rf"log: {re.escape(cell_log(BROKEN))}, {re.escape(str(slurm_log))} \(check log", out), out[-6000:]
    assert "unknown key 'epochz' (did you mean 'epochs'?)" in out
    assert "returned non-zero exit status 2" in out  # run_cell's exit status for a config error
    assert "returned non-zero exit status 2" in slurm_log.read_text()
    row = cluster.sacct([jobid])[jobid]
    assert (row["State"], row["Partition"], row["Account"]) == ("FAILED", "cpu", ACCOUNT), row
    assert not (repo / run_path(BROKEN)).exists()


def test_cancelled_cell_then_rerun_incomplete_gives_every_record(first_run, cluster, repo):
    out = first_run.output
    jobid = first_run.cancelled
    # cancelled inside the cell, before it wrote its record: the job, not the cell, ended it
    assert "-> results/" not in first_run.cell_log_at_cancel and not first_run.record_at_cancel, (
        f"the long cell finished before scancel; raise LONG_EPOCHS ({LONG_EPOCHS})"
    )
    assert f"SLURM-job '{jobid}' failed, SLURM status is: 'CANCELLED'" in out, out[-6000:]
    assert cluster.sacct([jobid])[jobid]["State"].startswith("CANCELLED"), cluster.sacct([jobid])
    assert not stray_files(repo, GOOD), "a cancelled or failed cell left a file behind"

    every = [*GOOD, LONG]
    rerun = snakemake(cluster, repo, "--rerun-incomplete", *map(run_path, every))
    assert rerun.startswith("exit status 0\n"), rerun[-8000:]
    assert re.search(r"run_cell\s+1\n", rerun), "only the cancelled cell reruns:\n" + rerun[-4000:]
    for cell in every:
        record = read_record(repo / run_path(cell))
        assert (record["study"], record["variant"], record["seed"]) == cell
    assert read_record(repo / run_path(LONG))["config"]["epochs"] == LONG_EPOCHS
    assert not stray_files(repo, every)
    incomplete = repo / ".snakemake" / "incomplete"
    assert not incomplete.exists() or not any(incomplete.iterdir())
