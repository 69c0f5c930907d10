"""params.yaml stays editable by DVC: no YAML anchors (DVC's rewrite turns them into copies), section
inheritance through `extends`, and the move from anchors to `extends` changed no resolved config."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import yaml

from pipelines import dag
from tests.workflow_helpers import ROOT

DATA = ROOT / "tests" / "data"


def resolved(path: Path) -> dict[str, Any]:
    """Everything a run of every profile of ``path`` depends on, fully resolved."""
    out: dict[str, Any] = {}
    for name in yaml.safe_load(path.read_text())["profiles"]:
        p = dag.load_profile(name, path)
        out[name] = {
            "device": p.device,
            "studies": {
                s.name: {
                    "entry": s.entry,
                    "seeds": s.seeds,
                    "needs": s.needs,
                    "resources": s.resources,
                    "configs": {v: s.config(v) for v in s.variants},
                }
                for s in p.studies.values()
            },
            "artifacts": {a.name: dataclasses.asdict(a) for a in p.artifacts.values()},
        }
    return out


def test_params_yaml_has_no_anchors_aliases_or_merge_keys():
    events = list(yaml.parse((ROOT / "params.yaml").read_text()))
    anchors = [e for e in events if getattr(e, "anchor", None)]
    aliases = [e for e in events if isinstance(e, yaml.AliasEvent)]
    merges = [e for e in events if isinstance(e, yaml.ScalarEvent) and e.value == "<<"]
    assert not (anchors or aliases or merges), "use `extends: <path>` instead of YAML anchors (README: The pipeline)"


def dvc_set_param(params: Path, override: str) -> Path:
    """What `dvc exp run -S <override>` does to params.yaml (DVC's own code); returns a copy of the
    result under a new name (params files are cached by path)."""
    from dvc.utils.hydra import apply_overrides

    apply_overrides(params, [override])
    out = params.with_name(f"{params.stem}.{abs(hash(override))}.yaml")
    shutil.copy2(params, out)
    return out


def test_dvc_set_param_keeps_the_inheritance(tmp_path):
    """`dvc exp run -S` rewrites params.yaml (every value written back through OmegaConf); with YAML
    anchors that turned `heads_ablation`'s merged keys into copies, so a later edit of `heads.base`
    no longer reached it. With `extends`, two successive -S edits of heads.base both reach it."""
    params = tmp_path / "params.yaml"
    shutil.copy2(ROOT / "params.yaml", params)
    before = resolved(params)
    epochs = before["mini"]["studies"]["heads"]["configs"]["backprop"]["epochs"]
    dvc_set_param(params, f"profiles.mini.studies.heads.base.epochs={epochs + 7}")
    after = resolved(dvc_set_param(params, f"profiles.mini.studies.heads.base.epochs={epochs + 9}"))
    for study in ("heads", "heads_ablation"):
        for variant, config in after["mini"]["studies"][study]["configs"].items():
            assert config["epochs"] == epochs + 9, (study, variant)
            config["epochs"] = before["mini"]["studies"][study]["configs"][variant]["epochs"]
    assert after == before  # nothing but those epochs moved


def test_moving_from_anchors_to_extends_kept_every_resolved_config():
    """tests/data holds params.yaml just before and just after the move (the after file was the live
    params.yaml in that commit): every profile, cell config, seed list and artifact is identical."""
    before, after = resolved(DATA / "params_before_extends.yaml"), resolved(DATA / "params_after_extends.yaml")
    assert before == after
    assert any(e.value == "extends" for e in yaml.parse((DATA / "params_after_extends.yaml").read_text())
               if isinstance(e, yaml.ScalarEvent))
