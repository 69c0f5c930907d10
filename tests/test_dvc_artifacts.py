"""Artifacts are byte-reproducible: rebuilt under another (temporary) name, on the same machine,
they have the same md5, so DVC's lock and cache see the same object and nothing downstream reruns.

What used to vary (issue 13): torch.save names the zip archive inside the file after the file's
name (so the temporary build name leaked into the bytes), and builders stored their own timings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from circadian_core.artifacts import save_torch, torch_bytes
from tests.workflow_helpers import ROOT

torch = pytest.importorskip("torch")  # the vision artifacts need it; the test environment has it


def md5(path: Path) -> str:
    if path.is_dir():
        h = hashlib.md5()
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(p.relative_to(path).as_posix().encode() + md5(p).encode())
        return h.hexdigest()
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_torch_save_leaks_the_file_name_and_save_torch_does_not(tmp_path):
    obj = {"w": torch.arange(6.0).reshape(2, 3), "meta": {"a": 1}}
    torch.save(obj, tmp_path / "one.pt")
    torch.save(obj, tmp_path / ".two.pt.building")
    assert md5(tmp_path / "one.pt") != md5(tmp_path / ".two.pt.building")  # why the fix exists
    save_torch(obj, tmp_path / "three.pt")
    save_torch(obj, tmp_path / ".four.pt.building")
    assert md5(tmp_path / "three.pt") == md5(tmp_path / ".four.pt.building")
    assert (tmp_path / "three.pt").read_bytes() == torch_bytes(obj)
    assert torch.load(tmp_path / "three.pt", weights_only=True)["w"].equal(obj["w"])
    assert not list(tmp_path.glob("*.tmp"))


def _mini_artifact(name: str) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return params["profiles"]["mini"]["artifacts"][name]


@pytest.mark.slow
def test_rebuilt_vision_and_hal_artifacts_are_byte_identical(tmp_path):
    """digits_cnn (fewer epochs), the heads' feature cache and the plastic brain's feature bank on it
    and hal's Split-Digits tensors, each built twice under different temporary names, as
    build_artifact does."""
    from circadian_core.runner import resolve_entry, set_threads
    from circadian_core.seeding import seed_everything

    set_threads(1)
    cnn = _mini_artifact("digits_cnn")
    heads = _mini_artifact("digits_features")
    plastic = _mini_artifact("plastic_digits_features")
    hal = _mini_artifact("hal_digits")
    built: dict[str, list[str]] = {"cnn": [], "heads": [], "plastic": [], "hal": []}
    for run in ("a", "b"):
        where = tmp_path / run
        where.mkdir()
        seed_everything(0)
        cnn_out = where / f".digits_cnn.pt.{run}.building"
        resolve_entry(cnn["entry"])({**cnn["config"], "epochs": 2}, out=cnn_out, device="cpu", artifacts={})
        heads_out = where / f".digits_features.pt.{run}.building"
        resolve_entry(heads["entry"])(heads["config"], out=heads_out, device="cpu", artifacts={"digits_cnn": cnn_out})
        feats_out = where / f".plastic.pt.{run}.building"
        resolve_entry(plastic["entry"])(plastic["config"], out=feats_out, device="cpu", artifacts={"digits_cnn": cnn_out})
        hal_out = where / f"hal_digits.{run}.npz"
        resolve_entry(hal["entry"])(hal["config"], out=hal_out, device="cpu", artifacts={})
        built["cnn"].append(md5(cnn_out))
        built["heads"].append(md5(heads_out))
        built["plastic"].append(md5(feats_out))
        built["hal"].append(md5(hal_out))
    for name, digests in built.items():
        assert digests[0] == digests[1], f"{name} differs between two builds"
    for out in (heads_out, feats_out):
        blob = torch.load(out, weights_only=True)
        assert not any(k.endswith("_s") or "per_s" in k for k in blob["info"]), blob["info"]  # no timing inside
        assert "seconds" not in blob
    assert np.isfinite(blob["x_train"].numpy()).all()
