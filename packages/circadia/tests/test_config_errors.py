"""Bad settings: one error naming the file or key and the fix, before any model is loaded."""

from __future__ import annotations

import json

import pytest

from circadia.cli import main
from circadia.config import night_config
from circadian_core.config import ConfigError


def _cycle(tmp_path, name: str, text: str, capsys) -> str:
    cfg = tmp_path / name
    cfg.write_text(text)
    # the model does not exist: an error about it would mean the config was accepted
    rc = main(["--home", str(tmp_path / "h"), "cycle", "--config", str(cfg), "--model", str(tmp_path / "no-model")])
    err = capsys.readouterr().err
    assert rc == 2 and "no-model" not in err, err
    return err


def test_yaml_number_as_text_names_file_key_and_fix(tmp_path, capsys):
    err = _cycle(tmp_path, "night.yaml", "train:\n  lr: 2e-5\n", capsys)
    assert "night.yaml.train.lr" in err and "2e-5" in err and "2e-05" in err  # YAML reads 2e-5 as text: write 2.0e-5


def test_list_where_a_section_belongs(tmp_path, capsys):
    err = _cycle(tmp_path, "night.yaml", "train:\n  - iters: 3\n", capsys)
    assert "night.yaml.train: expected a section" in err
    err = _cycle(tmp_path, "night.json", json.dumps({"eval": 3}), capsys)
    assert "night.json.eval: expected a section" in err


def test_out_of_range_values(tmp_path, capsys):
    err = _cycle(tmp_path, "night.yaml", "eval:\n  heldout_fraction: 1.5\n", capsys)
    assert "night.yaml.eval.heldout_fraction: 1.5 is out of range; it must be <= 0.9" in err
    err = _cycle(tmp_path, "night.json", json.dumps({"train": {"lr": -1e-4}}), capsys)
    assert "night.json.train.lr: -0.0001 is out of range; it must be > 0.0" in err
    err = _cycle(tmp_path, "night.json", json.dumps({"dreams": {"temperature": 0.9}}), capsys)
    assert "dreams.temperature" in err and "must be > 1" in err


def test_unreadable_config_files(tmp_path, capsys):
    assert "night.yaml: not valid YAML" in _cycle(tmp_path, "night.yaml", "train: [unclosed\n", capsys)
    assert "night.json: not valid JSON" in _cycle(tmp_path, "night.json", '{"train": ', capsys)
    assert "holds key: value pairs" in _cycle(tmp_path, "night.yaml", "- a\n- b\n", capsys)


def test_home_config_errors_name_the_home_config(tmp_path, capsys):
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "config.yaml").write_text("replay_fraction: 1.2\n")
    assert main(["--home", str(tmp_path / "h"), "cycle", "--model", str(tmp_path / "no-model")]) == 2
    assert "config.yaml.replay_fraction: 1.2 is out of range" in capsys.readouterr().err


def test_bad_flag_value_names_the_flags(tmp_path, capsys):
    assert main(["--home", str(tmp_path / "h"), "cycle", "--lr", "0", "--model", str(tmp_path / "no-model")]) == 2
    assert "command-line flags.train.lr" in capsys.readouterr().err


def test_valid_configs_still_pass():
    cfg = night_config({"train": {"lr": 2.0e-5, "target_modules": ["q_proj"]}, "eval": {"heldout_fraction": 0.0}, "retention_days": 30})
    assert cfg.train.lr == 2e-5 and cfg.train.target_modules == ("q_proj",) and cfg.retention_days == 30.0
    with pytest.raises(ConfigError, match="did you mean 'train'"):
        night_config({"trian": {}})
