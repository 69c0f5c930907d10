"""Fixtures for the repository-level tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workflow_helpers import make_toy_repo


@pytest.fixture(scope="session")
def toy_repo(tmp_path_factory) -> Path:
    return make_toy_repo(tmp_path_factory.mktemp("toyrepo"))
