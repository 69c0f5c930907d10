"""Fixtures for the repository-level tests."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from tests.workflow_helpers import make_toy_records, make_toy_repo, toy_params_file


@pytest.fixture(scope="session")
def toy_repo(tmp_path_factory) -> Path:
    return make_toy_repo(tmp_path_factory.mktemp("toyrepo"))


@pytest.fixture(scope="session")
def toy_records(tmp_path_factory) -> Path:
    """The toy profile's four run records, made once per session (copy them, never edit them)."""
    return make_toy_records(tmp_path_factory.mktemp("toyrecords"))


@dataclasses.dataclass
class ToyRoot:
    root: Path
    params: Path

    def profile(self):
        from pipelines.dag import load_profile

        return load_profile("toy", self.params)

    def run(self, seed: int = 1, variant: str = "plain") -> Path:
        return self.root / self.profile().run_path("toy", variant, seed)


@pytest.fixture
def toy_root(tmp_path, monkeypatch, toy_records) -> ToyRoot:
    """A scratch repository root holding the toy profile's records; the stage scripts point at it.

    pipelines.dag reads its params.yaml, aggregate/figures/build_paper write under it, and only the
    toy report runs (tests/toy_report.py).
    """
    from pipelines import dag
    from pipelines.scripts import aggregate, build_paper, figures
    from tests import toy_report

    shutil.copytree(toy_records, tmp_path / "results")
    params = toy_params_file(tmp_path)
    monkeypatch.setattr(dag, "PARAMS", params)
    for mod in (aggregate, figures, build_paper):
        monkeypatch.setattr(mod, "ROOT", tmp_path)
    monkeypatch.setattr(aggregate, "report_modules", lambda: [toy_report])
    monkeypatch.setattr(figures, "report_modules", lambda: [toy_report])
    monkeypatch.chdir(tmp_path)
    return ToyRoot(tmp_path, params)
