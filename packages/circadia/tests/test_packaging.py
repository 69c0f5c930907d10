"""Packaging: the CLI names its version; the [mlx] extra installs on Linux (mlx[cpu]) and macOS (mlx)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from circadia.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_version_flag(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as ex:
        main(["--version"])
    assert ex.value.code == 0 and capsys.readouterr().out.strip() == f"circadia {version('circadia')}"


@pytest.mark.parametrize("platform,want", [("linux", {"mlx[cpu]", "mlx-lm"}), ("darwin", {"mlx", "mlx-lm"})])
def test_mlx_extra_per_platform(platform, want):
    extra = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["mlx"]
    env = {"sys_platform": platform, "platform_system": platform.capitalize()}
    got = set()
    for line in extra:
        req = Requirement(line)
        if req.marker is None or Marker(str(req.marker)).evaluate(env):
            got.add(req.name + (f"[{','.join(sorted(req.extras))}]" if req.extras else ""))
    assert got == want


def test_declared_runtime_dependencies():
    deps = {Requirement(d).name for d in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]}
    assert {"detect-secrets", "filelock"} <= deps
