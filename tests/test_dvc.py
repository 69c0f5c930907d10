"""DVC as its users run it, on a scratch git + DVC copy of the toy workflow (tests/dvc_toy.py):
one pipeline per profile, every knob tracked, artifacts in the cache, experiments (--temp, --queue,
--dry), per-study metrics and plots that `dvc plots diff` overlays."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.dvc_toy import changed_stages, commit, dvc, lock_outs, make_dvc_toy
from tests.workflow_helpers import BIN, run

pytestmark = pytest.mark.slow

SHRINK = "profiles.toy.studies.toy.variants.shrunk.shrink"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The toy DVC project reproduced up to its metrics, dvc.lock committed (the experiments' baseline)."""
    path = make_dvc_toy(tmp_path_factory.mktemp("dvctoy"))
    dvc(path, "repro", "metrics")
    commit(path, "reproduced")
    return path


def _exp_metrics(repo, name: str) -> dict:
    """study -> metrics of experiment ``name`` (from `dvc exp show --json`)."""
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for rev in exp["revs"]:
                if rev.get("name") == name:
                    return {path: m.get("data") for path, m in rev["data"]["metrics"].items()}
    raise AssertionError(f"experiment {name!r} not in `dvc exp show`: {shown}")


def _workspace_metrics(repo) -> dict:
    return json.loads((repo / "results/toy/metrics/toy.json").read_text())


def test_each_profile_is_its_own_pipeline(repo):
    """The profile is the pipeline file DVC is given: `dvc status` lists the other profile's stages,
    `dvc repro pipelines/dvc/big/dvc.yaml` runs them (its extra seed included) into results/big."""
    big = "pipelines/dvc/big/dvc.yaml"
    assert (repo / big).exists() and "dvc repro pipelines/dvc/big/dvc.yaml" in (repo / big).read_text()
    before = changed_stages(dvc(repo, "status", check=False).stdout)
    assert f"{big}:run-toy-plain-s3" in before and f"{big}:configs" in before
    assert not any(s.startswith(("run-", "artifact-")) or s in {"configs", "metrics"} for s in before)
    out = dvc(repo, "repro", f"{big}:run-toy-plain-s3").stdout
    assert "Running stage 'pipelines/dvc/big/dvc.yaml:run-toy-plain-s3'" in out
    # the artifact `big` inherits unchanged is the toy pipeline's (built once, not twice)
    assert "artifact-toy_prior" not in yaml.safe_load((repo / big).read_text())["stages"]
    assert "Running stage 'artifact-toy_prior'" not in out
    record = json.loads((repo / "results/big/runs/toy/plain/seed3.json").read_text())
    assert record["seed"] == 3 and record["metrics"]["acc"] > 0.5
    after = changed_stages(dvc(repo, "status", big, check=False).stdout)
    assert f"{big}:run-toy-plain-s3" not in after and f"{big}:run-toy-plain-s1" in after


def test_every_knob_reaches_exactly_its_cells(repo):
    """A variant's value, an inherited base value (extends), the device and the code are all tracked:
    after the configs stage, `dvc status` names exactly the cells whose resolved config changed."""
    params = repo / "params.yaml"
    original = params.read_text()
    code = repo / "tests" / "toy_artifact.py"
    code_text = code.read_text()
    try:
        params.write_text(original.replace("shrink: 0.5}", "shrink: 0.6}"))
        status = dvc(repo, "status", "dvc.yaml", check=False).stdout
        assert "configs" in changed_stages(status) and "profiles.toy.studies.toy" in status
        dvc(repo, "repro", "configs")
        stale = changed_stages(dvc(repo, "status", "dvc.yaml", check=False).stdout)
        assert {s for s in stale if s.startswith("run-")} == {"run-toy-shrunk-s1", "run-toy-shrunk-s2"}

        params.write_text(original.replace("base: {n_tasks: 5}", "base: {n_tasks: 4}"))
        dvc(repo, "repro", "configs")
        stale = changed_stages(dvc(repo, "status", "dvc.yaml", check=False).stdout)
        # toy_copy's base extends toy's: it follows
        assert {s for s in stale if s.startswith("run-")} == {
            "run-toy-plain-s1", "run-toy-plain-s2", "run-toy-shrunk-s1", "run-toy-shrunk-s2", "run-toy_copy-only-s1"
        }

        params.write_text(original.replace("device: cpu", "device: auto"))
        dvc(repo, "repro", "configs")
        stale = changed_stages(dvc(repo, "status", "dvc.yaml", check=False).stdout)
        assert {"artifact-toy_prior", "run-toy-plain-s1", "run-toy_copy-only-s1"} <= stale
        params.write_text(original)
        # code is a knob too: the configs fingerprint each entry's source folder (here tests/)
        code.write_text(code_text + "# an edit\n")
        status = dvc(repo, "status", "dvc.yaml", check=False).stdout
        assert "configs" in changed_stages(status) and "tests" in status
        dvc(repo, "repro", "configs")
        stale = changed_stages(dvc(repo, "status", "dvc.yaml", check=False).stdout)
        assert {"artifact-toy_prior", "run-toy-plain-s1", "run-toy_copy-only-s1"} <= stale
    finally:
        params.write_text(original)
        code.write_text(code_text)
        dvc(repo, "repro", "configs")
    assert not {s for s in changed_stages(dvc(repo, "status", "dvc.yaml", check=False).stdout) if s.startswith("run-")}


def test_a_new_seed_is_visible_and_names_the_fix(repo):
    """Adding a seed changes a tracked param; DVC cannot grow its stage list by itself, so the configs
    stage stops with the command that regenerates the pipeline, after which the new cell is listed."""
    params = repo / "params.yaml"
    original = params.read_text()
    try:
        params.write_text(original.replace("seeds: [1, 2]\n", "seeds: [1, 2, 4]\n", 1))
        assert "configs" in changed_stages(dvc(repo, "status", "dvc.yaml", check=False).stdout)
        failed = dvc(repo, "repro", "configs", check=False)
        assert failed.returncode != 0
        assert "dvc.yaml no longer matches params.yaml" in failed.stderr + failed.stdout
        assert "make dvc-yaml" in failed.stderr + failed.stdout
        run([str(BIN / "python"), "-m", "pipelines.scripts.dvcgen"], repo)
        assert "run-toy-plain-s4" in changed_stages(dvc(repo, "status", "dvc.yaml", check=False).stdout)
    finally:
        params.write_text(original)
        run([str(BIN / "python"), "-m", "pipelines.scripts.dvcgen"], repo)


def test_artifacts_and_results_are_in_the_cache(repo):
    """Nothing is `cache: false`: the artifact and every result are cache objects `dvc push` sends."""
    for path in ("dvc.yaml", "pipelines/dvc/big/dvc.yaml"):
        assert "cache: false" not in (repo / path).read_text()
    outs = lock_outs(repo)
    assert "results/toy/artifacts/prior.json" in outs
    for path, md5 in outs.items():
        name = md5.replace(".dir", "") + (".dir" if md5.endswith(".dir") else "")
        assert (repo / ".dvc/cache/files/md5" / name[:2] / name[2:]).exists(), f"{path} is not in the cache"


def test_exp_run_temp_moves_the_metric_and_reruns_only_its_cells(repo):
    before = _workspace_metrics(repo)
    out = dvc(repo, "exp", "run", "--temp", "-n", "shrink90", "-S", f"{SHRINK}=0.9", "metrics").stdout
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert {"configs", "run-toy-shrunk-s1", "run-toy-shrunk-s2", "aggregate", "metrics"} == ran
    exp = _exp_metrics(repo, "shrink90")["results/toy/metrics/toy.json"]
    assert exp["shrunk"]["acc"]["mean"] != pytest.approx(before["shrunk"]["acc"]["mean"], abs=1e-6)
    assert exp["plain"] == before["plain"]
    assert _workspace_metrics(repo) == before  # --temp leaves the workspace alone
    assert "shrink: 0.5}" in (repo / "params.yaml").read_text()


def test_exp_queue_runs_and_dry_prints_without_failing(repo):
    dvc(repo, "exp", "run", "--queue", "-n", "queued30", "-S", f"{SHRINK}=0.3", "metrics")
    assert "queued30" in dvc(repo, "queue", "status").stdout
    dvc(repo, "exp", "run", "--run-all")
    assert _exp_metrics(repo, "queued30")["results/toy/metrics/toy.json"]["shrunk"]["acc"]["mean"] > 0
    # --dry runs in a fresh temporary copy; --pull fills it from the cache (treeverse/dvc#9021)
    dry = dvc(repo, "exp", "run", "--dry", "--pull", "-S", f"{SHRINK}=0.7", "metrics")
    assert "Running stage 'configs'" in dry.stdout
    assert "shrink: 0.5}" in (repo / "params.yaml").read_text()


def test_metrics_are_per_study_means_and_intervals_and_plots_overlay_experiments(repo):
    shown = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    data = shown[0]["data"] if isinstance(shown, list) else next(iter(shown.values()))["data"]
    toy = data["results/toy/metrics/toy.json"]["data"]
    assert set(toy) == {"plain", "shrunk"}
    assert set(toy["plain"]) == {"acc", "bwt", "forgetting"}  # the contract's metrics, nothing else
    assert set(toy["plain"]["acc"]) == {"mean", "ci95"}
    summary = (repo / "results/toy/tables/summary.csv").read_text().splitlines()
    row = next(r for r in summary if r.startswith("toy,plain,acc,"))
    assert float(row.split(",")[4]) == pytest.approx(toy["plain"]["acc"]["mean"])
    plots = sorted(p.name for p in (repo / "results/toy/plots").iterdir())
    assert plots == ["toy.csv", "toy_copy.csv"]
    if not any(e.get("name") == "shrink90" for b in json.loads(dvc(repo, "exp", "show", "--json").stdout)
               for x in (b.get("experiments") or []) for e in x["revs"]):
        dvc(repo, "exp", "run", "--temp", "-n", "shrink90", "-S", f"{SHRINK}=0.9", "metrics")
    diff = json.loads(dvc(repo, "plots", "diff", "HEAD", "shrink90", "--json").stdout)
    rendered = diff["data"]["results/toy/plots/toy.csv"][0]
    values = rendered["content"]["data"]["values"]
    revs = {v["rev"] for v in values}
    assert len(revs) == 2
    shrunk = {v["rev"]: float(v["mean"]) for v in values if v["variant"] == "shrunk" and v["metric"] == "acc"}
    assert len(set(shrunk.values())) == 2  # the two experiments' bars differ
    assert rendered["content"]["facet"]["row"]["field"] == "metric"


def test_noop_after_reproduction(repo):
    assert "Running stage" not in dvc(repo, "repro", "metrics").stdout
