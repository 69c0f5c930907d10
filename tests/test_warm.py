"""The warm cell server: a cell run through it writes the same record as a cold run, its output goes
to the job's own log, its exit status comes back, and a killed job leaves nothing behind."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.dag import ROOT
from pipelines.scripts import warm


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("warm")
    sock, ready = tmp / "cells.sock", tmp / "ready"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop(warm.ENV, None)
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.scripts.warm", "serve", str(sock), "--ready", str(ready),
                             "--allow", "warm_sleeper"], cwd=ROOT, env=env)
    t0 = time.monotonic()
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() - t0 < 120, "warm server did not start"
        time.sleep(0.05)
    yield sock
    proc.terminate()
    proc.wait(timeout=10)
    assert not sock.exists()


def _metrics(path: Path) -> dict:
    return json.loads(path.read_text())["metrics"]


def test_a_cell_through_the_server_equals_a_cold_run(server, tmp_path, monkeypatch):
    cold, hot = tmp_path / "cold.json", tmp_path / "hot.json"
    args = ["cpc_toy", "circadian", "3", "--profile", "mini"]
    subprocess.run([sys.executable, "-m", "pipelines.scripts.run_cell", *args, "--out", str(cold)], cwd=ROOT,
                   check=True, env={k: v for k, v in os.environ.items() if k != warm.ENV})
    monkeypatch.setenv(warm.ENV, str(server))
    monkeypatch.chdir(ROOT)
    assert warm.delegate("pipelines.scripts.run_cell", [*args, "--out", str(hot)]) == 0
    assert _metrics(hot) == _metrics(cold)


def test_job_output_and_exit_status_are_the_jobs(server, tmp_path):
    out, log = tmp_path / "done", tmp_path / "job.log"
    env = {**os.environ, warm.ENV: str(server)}
    code = ("import sys; from pipelines.scripts import warm; "
            f"sys.exit(warm.delegate('warm_sleeper', [{str(out)!r}, '0']))")
    with open(log, "w") as fh:
        rc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    assert rc == 3 and out.read_text() == "finished"
    assert "sleeper pid-independent start" in log.read_text()


def test_a_killed_job_stops_its_child(server, tmp_path):
    out = tmp_path / "never"
    env = {**os.environ, warm.ENV: str(server)}
    code = ("import sys; from pipelines.scripts import warm; "
            f"sys.exit(warm.delegate('warm_sleeper', [{str(out)!r}, '3']))")
    job = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE)
    assert job.stdout.readline()  # the child started the job
    job.send_signal(signal.SIGKILL)
    job.wait()
    time.sleep(4)
    assert not out.exists()


def test_no_server_means_a_cold_run(monkeypatch, tmp_path):
    monkeypatch.delenv(warm.ENV, raising=False)
    assert warm.delegate("pipelines.scripts.run_cell", []) is None
    monkeypatch.setenv(warm.ENV, str(tmp_path / "absent.sock"))
    assert warm.delegate("pipelines.scripts.run_cell", []) is None
