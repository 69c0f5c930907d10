import subprocess
import sys

import circadian_vision


def test_every_lazy_export_resolves_to_its_module_object():
    import importlib

    for name, module in circadian_vision._EXPORTS.items():
        obj = getattr(circadian_vision, name)
        assert obj is getattr(importlib.import_module(f"circadian_vision.{module}"), name)


def test_unknown_attribute_is_an_attribute_error():
    try:
        circadian_vision.not_a_thing  # noqa: B018
    except AttributeError as exc:
        assert "not_a_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_plain_import_loads_no_torch():
    code = "import sys, circadian_vision; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_readme_example_runs_and_trains_a_circadian_head(capsys):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"## Train a circadian head on your own tensors\s+```python\n(.*?)```", readme, re.S)
    assert block, "the README lost its example"
    code = block.group(1)
    assert len(code.strip().splitlines()) <= 10
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    head = scope["head"]
    assert head.stats()["sleeps"] >= 1 and head.stats()["distinct_end"] <= head.stats()["hidden_end"]
    assert "accuracy" in capsys.readouterr().out


def test_plotting_dependencies_are_declared_as_an_extra():
    from pathlib import Path

    import tomllib

    meta = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    plots = " ".join(meta["optional-dependencies"]["plots"])
    assert all(name in plots for name in ("matplotlib", "seaborn", "pandas"))
    assert any(d.startswith("tqdm") for d in meta["dependencies"])  # features.py and the trainer import it
