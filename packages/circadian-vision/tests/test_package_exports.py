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
