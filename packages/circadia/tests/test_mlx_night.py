"""Whole nights on the MLX backend (tiny model): accepted and versioned, continued by the torch
backend the next night (the mlx-lm adapter converts on load), then merged by MLX."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mlx", reason="mlx is not installed (pip install 'circadia[mlx]')")

from circadia.adapters_convert import detect_format
from circadia.home import Home
from circadia.journal import Journal, import_log
from circadia.sleep.night import run_night
from circadia.testing import tiny_night_config, write_log

DAYS = [
    [(f"Note {i} for today, please.", f"Sure thing, Jordan! Note {i} is saved.") for i in range(10)],
    [(f"What about item {i}?", f"Sure thing, Jordan! Item {i} is on the list.") for i in range(10)],
    [(f"Remind me of task {i}.", f"Sure thing, Jordan! Task {i} is due soon.") for i in range(10)],
]


def test_mlx_night_then_torch_night_then_mlx_merge(tmp_path, tiny_model_dir):
    home = Home(tmp_path / "home")
    home.init()

    def night(day: int, **over) -> dict:
        import_log(write_log(tmp_path / f"day{day}.jsonl", DAYS[day - 1]), Journal(home.memories))
        return run_night(home, tiny_night_config(tiny_model_dir, **over), model_dir=tiny_model_dir, log=None)

    first = night(1, backend="mlx")
    assert first.status == "accepted", first
    adapter = home.root / "adapters" / "night-001"
    assert detect_format(adapter) == "mlx"
    assert json.loads((adapter / "circadia_adapter.json").read_text())["backend"] == "mlx"
    assert first.train.tokens > 0 and not first.train.aborted_nan

    second = night(2, backend="torch")  # continues yesterday's mlx-lm adapter in torch
    assert second.status == "accepted", second
    assert second.previous_adapter == "adapters/night-001"
    assert detect_format(home.root / "adapters" / "night-002") == "peft"

    third = night(3, backend="mlx", merge=True)  # continues the peft adapter in MLX, then fuses it
    assert third.status == "accepted", third
    state = home.load_state()
    assert state.base_model == "models/night-003" and state.current_adapter is None
    merged = home.root / "models" / "night-003"
    assert json.loads((merged / "circadia_source.json").read_text())["backend"] == "mlx"
    assert json.loads((merged / "config.json").read_text())["rope_theta"] == 100000.0
