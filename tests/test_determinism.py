"""Issue 16, point 4: same seed, same CPU -> identical metrics, for one cell of every mini study.

Two fresh processes each build the mini artifacts into their own folder and run one shrunk cell of
every study (tests/determinism_cells.py); their records' metrics must be equal to the bit, so no
timing (or anything else run-dependent) sits in a study's metrics. The artifacts that are
byte-reproducible on one machine are compared too.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipelines.dag import load_profile
from tests.workflow_helpers import ROOT, env

pytestmark = pytest.mark.slow

BYTE_IDENTICAL = ("digits_cnn", "hal_digits")  # artifacts that rebuild to the same bytes on one machine


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two processes side by side (each cell runs on one thread: sharing the CPU changes no number)."""
    works = [tmp_path_factory.mktemp(name) for name in ("first", "second")]
    procs = [subprocess.Popen([sys.executable, "-m", "tests.determinism_cells", str(w), str(w / "metrics.json")],
                              cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for w in works]
    errors = [proc.communicate(timeout=900)[1] for proc in procs]
    for proc, err in zip(procs, errors):
        assert proc.returncode == 0, err[-4000:]
    return [(w, json.loads((w / "metrics.json").read_text())) for w in works]


def test_every_mini_study_has_a_cell(two_runs):
    (_, first), _ = two_runs
    assert set(first) == set(load_profile("mini").studies)


@pytest.mark.parametrize("study", sorted(load_profile("mini").studies))
def test_same_seed_same_cpu_identical_metrics(two_runs, study):
    (_, first), (_, second) = two_runs
    a, b = first[study]["metrics"], second[study]["metrics"]
    differ = sorted(k for k in set(a) | set(b) if a.get(k, "absent") != b.get(k, "absent"))
    assert not differ, f"{study}/{first[study]['variant']}: metrics differ between two runs of one seed: {differ} (timings belong in StudyResult.timings)"
    assert a, f"{study} reported no metrics"


@pytest.mark.parametrize("name", BYTE_IDENTICAL)
def test_artifacts_rebuild_byte_identical(two_runs, name):
    (w1, _), (w2, _) = two_runs
    out = load_profile("mini").artifacts[name].out
    assert (w1 / out).read_bytes() == (w2 / out).read_bytes(), f"{out} differs between two builds on one machine"
