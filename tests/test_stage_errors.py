"""Issue 16, points 5 and 6: bad seeds, devices, datasets, checksums, entries, YAML and damaged
inputs each give ONE line on stderr naming the file or key and the fix; the traceback only under
--debug or CIRCADIAN_DEBUG=1. Each test provokes the fault through the stage scripts' main()."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from circadian_core import device as device_mod
from circadian_core.config import ConfigError
from pipelines import dag
from pipelines.scripts import build_artifact, run_cell

FAULT_PARAMS = """\
profile: faults
profiles:
  faults:
    device: cpu
    artifacts:
      blob: {{entry: "tests.fault_studies:write_blob", out: results/faults/artifacts/blob.npz}}
      threaded: {{entry: "tests.fault_studies:write_threads", out: results/faults/artifacts/threads.txt,
                 resources: {{threads: 3}}}}
      crashing: {{entry: "tests.fault_studies:fails_midway", out: results/faults/artifacts/crash.bin}}
      unknown: {{entry: "tests.fault_studies:no_such_function", out: results/faults/artifacts/u.bin}}
    studies:
      dataset:
        entry: "tests.fault_studies:needs_dataset"
        seeds: [1]
        base: {{url: "{url}", file: "{file}", sha256: "{sha}"}}
        variants: {{v: {{}}}}
      blobby:
        entry: "tests.fault_studies:reads_blob"
        needs: [blob]
        seeds: [1]
        variants: {{v: {{}}}}
      keeps_the_other_artifacts:
        entry: "tests.fault_studies:marks_it_ran"
        needs: [threaded, crashing, unknown]
        seeds: [1]
        variants: {{v: {{}}}}
      marked:
        entry: "tests.fault_studies:marks_it_ran"
        seeds: [1]
        base: {{marker: ran.txt}}
        variants: {{v: {{}}}}
      nomodule:
        entry: "tests.no_such_module:run"
        seeds: [1]
        variants: {{v: {{}}}}
      noattr:
        entry: "tests.fault_studies:no_such_function"
        seeds: [1]
        variants: {{v: {{}}}}
"""
URL = "https://data.invalid/archive.bin"
CONTENT = b"the real archive"


@pytest.fixture
def faults(tmp_path, monkeypatch) -> Path:
    text = FAULT_PARAMS.format(url=URL, file=tmp_path / "data" / "archive.bin", sha=hashlib.sha256(CONTENT).hexdigest())
    (tmp_path / "params.yaml").write_text(text)
    monkeypatch.setattr(dag, "PARAMS", tmp_path / "params.yaml")
    monkeypatch.delenv("CIRCADIAN_DEBUG", raising=False)
    monkeypatch.delenv("CIRCADIAN_PROFILE", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_a_missing_device_names_the_flag_and_the_fix(faults, capsys, monkeypatch):
    monkeypatch.setattr(device_mod, "_torch_has", lambda kind: False)
    assert run_cell.main(["marked", "v", "1", "--device", "cuda"]) == 2
    line = one_line(capsys)
    assert line.startswith("error: --device: device 'cuda' was requested but is not available here")
    assert line.endswith("pass --device auto or --device cpu")
    assert not (faults / "ran.txt").exists()


def test_a_device_of_params_yaml_names_that_key(faults, capsys, monkeypatch):
    monkeypatch.setattr(device_mod, "_torch_has", lambda kind: False)
    (faults / "params.yaml").write_text((faults / "params.yaml").read_text().replace("device: cpu", "device: mps"))
    assert build_artifact.main(["blob"]) == 2
    assert one_line(capsys).startswith("error: params.yaml profiles.faults.device: device 'mps' was requested")


def test_a_missing_dataset_offline_names_the_file_to_place(faults, capsys, monkeypatch):
    monkeypatch.setenv("CIRCADIAN_OFFLINE", "1")
    assert run_cell.main(["dataset", "v", "1"]) == 1
    line = one_line(capsys)
    assert f"download {URL} on a machine with network access and place it at {faults}/data/archive.bin" in line


def test_a_checksum_mismatch_offline_does_not_say_rerun_to_download(faults, capsys, monkeypatch):
    (faults / "data").mkdir()
    (faults / "data" / "archive.bin").write_bytes(b"a truncated download")
    monkeypatch.setenv("CIRCADIAN_OFFLINE", "1")
    assert run_cell.main(["dataset", "v", "1"]) == 1
    line = one_line(capsys)
    assert "archive.bin: sha256 is" in line and "this machine cannot download it" in line
    assert f"download {URL} on a machine with network access and place that file at" in line
    assert "rerun to download" not in line
    assert (faults / "data" / "archive.bin").read_bytes() == b"a truncated download"  # never deleted


def test_a_checksum_mismatch_online_may_say_download_again(tmp_path):
    from circadian_core.datasets import ChecksumError, fetch

    src = tmp_path / "src.bin"
    src.write_bytes(CONTENT)
    dest = tmp_path / "dest.bin"
    dest.write_bytes(b"corrupt")
    with pytest.raises(ChecksumError, match="delete it and rerun to download it again"):
        fetch(src.as_uri(), dest, hashlib.sha256(CONTENT).hexdigest())


@pytest.mark.parametrize(
    "study,key,fix",
    [
        ("nomodule", "params.yaml profiles.faults.studies.nomodule.entry", "install the package"),
        ("noattr", "params.yaml profiles.faults.studies.noattr.entry", "has no attribute 'no_such_function'"),
    ],
)
def test_an_unknown_entry_names_its_key(faults, capsys, study, key, fix):
    assert run_cell.main([study, "v", "1"]) == 2
    line = one_line(capsys)
    assert key in line and fix in line


def test_an_unknown_artifact_entry_names_its_key(faults, capsys):
    assert build_artifact.main(["unknown"]) == 2
    assert "params.yaml profiles.faults.artifacts.unknown.entry" in one_line(capsys)


@pytest.mark.parametrize("script,args", [(run_cell, ["marked", "v", "1"]), (build_artifact, ["blob"])])
def test_a_yaml_error_names_the_line(faults, capsys, script, args):
    params = faults / "params.yaml"
    params.write_text(params.read_text().replace("    device: cpu", "    device: cpu\n  bad: [unclosed"))
    assert script.main(args) == 2
    line = one_line(capsys)
    assert "params.yaml: not valid YAML at line" in line and "fix that line" in line


def _build_blob(faults) -> Path:
    assert build_artifact.main(["blob"]) == 0
    return faults / "results/faults/artifacts/blob.npz"


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_artifact_names_the_file_and_the_rebuild(faults, capsys, damage):
    blob = _build_blob(faults)
    capsys.readouterr()
    blob.write_bytes(b"not a zip at all" if damage == "garbage" else blob.read_bytes()[:40])
    assert run_cell.main(["blobby", "v", "1"]) == 1
    line = one_line(capsys)
    assert line.startswith("error: results/faults/artifacts/blob.npz is damaged or not in the expected format (")
    assert line.endswith("; delete it and rebuild it (snakemake results/faults/artifacts/blob.npz)")
    assert "allow_pickle" not in line  # numpy's advice to unpickle an untrusted file is not the fix


def test_the_traceback_only_under_debug(faults, capsys, monkeypatch):
    assert run_cell.main(["noattr", "v", "1", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: ")
    monkeypatch.setenv("CIRCADIAN_DEBUG", "1")
    assert run_cell.main(["noattr", "v", "1"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_a_negative_seed_fails_before_any_compute_naming_the_key(faults, capsys):
    assert run_cell.main(["marked", "v", "-3"]) == 2
    line = one_line(capsys)
    assert "seed -3 (params.yaml profiles.faults.studies.marked.seeds)" in line and "non-negative" in line
    assert not (faults / "ran.txt").exists()


def test_a_negative_seed_in_params_is_a_schema_error_naming_the_key(faults):
    params = faults / "params.yaml"
    params.write_text(params.read_text().replace("base: {marker: ran.txt}", "base: {marker: ran.txt}\n        seeds: [-1]")
                      .replace("entry: \"tests.fault_studies:marks_it_ran\"\n        seeds: [1]",
                               "entry: \"tests.fault_studies:marks_it_ran\""))
    with pytest.raises(ConfigError, match=r"at profiles.faults.studies.marked.seeds.0: -1 is less than the minimum of 0"):
        dag.load_profile("faults", params)


def test_a_failing_artifact_leaves_nothing_that_looks_finished(faults, capsys):
    assert build_artifact.main(["crashing"]) == 1
    assert one_line(capsys).startswith("error: artifact crashing: RuntimeError: the converter crashed (rerun with --debug")
    assert list((faults / "results/faults/artifacts").iterdir()) == []


def test_an_artifact_runs_with_its_resources_threads(faults, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    assert build_artifact.main(["threaded"]) == 0
    assert (faults / "results/faults/artifacts/threads.txt").read_text() == "3"
