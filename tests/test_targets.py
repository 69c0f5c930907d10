"""The reproduction-target check: a moved headline fails, a held one passes, bad entries are errors."""

import pandas as pd
import pytest
import yaml

from circadian_core.config import ConfigError
from pipelines.scripts.check_targets import TARGETS, check, load_targets


def _runs() -> pd.DataFrame:
    rows = []
    for seed, (a, b) in enumerate([(0.90, 0.80), (0.92, 0.81), (0.91, 0.79)]):
        rows += [{"study": "s", "variant": "new", "seed": seed, "metric": "acc", "value": a},
                 {"study": "s", "variant": "old", "seed": seed, "metric": "acc", "value": b}]
    return pd.DataFrame(rows)


def _write(tmp_path, entries):
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump({"mini": entries}))
    return path


def test_mean_and_paired_targets_hold_or_move(tmp_path):
    path = _write(tmp_path, [
        {"study": "s", "variant": "new", "metric": "acc", "expected": 0.91, "tolerance": 0.005},
        {"study": "s", "variant": "new", "metric": "acc", "expected": 0.95, "tolerance": 0.01},
        {"study": "s", "variant": "new", "against": "old", "metric": "acc", "expected": 0.11, "tolerance": 0.001},
    ])
    held, moved, paired = check("mini", _runs(), path)
    assert held.ok and held.n == 3 and held.observed == pytest.approx(0.91)
    assert not moved.ok
    assert paired.ok and paired.observed == pytest.approx(0.11)


def test_target_naming_missing_results_is_an_error(tmp_path):
    path = _write(tmp_path, [{"study": "s", "variant": "gone", "metric": "acc", "expected": 0.9, "tolerance": 0.1}])
    with pytest.raises(ConfigError, match="no such results"):
        check("mini", _runs(), path)


def test_bad_entries_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'tol'"):
        load_targets("mini", _write(tmp_path, [{"study": "s", "variant": "v", "metric": "m", "expected": 1, "tol": 1}]))
    with pytest.raises(ConfigError, match="tolerance must be >= 0"):
        load_targets("mini", _write(tmp_path, [{"study": "s", "variant": "v", "metric": "m", "expected": 1,
                                                 "tolerance": -1}]))


def test_the_repository_targets_file_parses():
    for profile in ("mini", "paper"):
        load_targets(profile, TARGETS)
