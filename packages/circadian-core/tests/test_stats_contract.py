"""Known-answer tests of the shared statistics and of study contracts (runner and parse)."""

import dataclasses
import math
import sys
import types

import numpy as np
import pytest
from scipy import stats as sps

from circadian_core.config import ConfigError
from circadian_core.contract import Contract, Metric, contract_for
from circadian_core.record import StudyResult, read_record
from circadian_core.runner import run_cell
from circadian_core.stats import paired_difference, t_errorbar, t_interval


def test_t_interval_matches_scipy():
    values = [0.91, 0.88, 0.95, 0.90, 0.86]
    iv = t_interval(values)
    lo, hi = sps.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sps.sem(values))
    assert iv.n == 5 and iv.low == pytest.approx(lo) and iv.high == pytest.approx(hi)
    assert t_errorbar(values) == pytest.approx((lo, hi))


def test_t_interval_drops_non_finite_and_handles_small_n():
    assert t_interval([1.0, None, float("nan"), float("inf")]).n == 1
    one = t_interval([2.0])
    assert one.mean == 2.0 and math.isnan(one.ci95)
    assert t_errorbar([2.0]) == (2.0, 2.0)
    assert math.isnan(t_interval([]).mean)


def test_paired_difference_is_scipy_ttest_rel_over_common_seeds():
    a = {0: 0.90, 1: 0.85, 2: 0.80, 3: 0.95, 9: 0.1}
    b = {0: 0.88, 1: 0.80, 2: 0.81, 3: 0.90, 4: 0.5}
    d = paired_difference(a, b)
    common = [0, 1, 2, 3]
    ref = sps.ttest_rel([a[s] for s in common], [b[s] for s in common])
    assert d.seeds == tuple(common) and d.n == 4
    assert d.p_value == pytest.approx(ref.pvalue) and d.t_stat == pytest.approx(ref.statistic)
    assert d.mean == pytest.approx(np.mean([a[s] - b[s] for s in common]))
    assert d.wins == 3 and d.test == "paired t-test"
    assert d.verdict() == "indistinguishable from" and not d.decided


def test_paired_difference_decides_only_when_interval_excludes_zero():
    up = paired_difference({s: 1.0 + 0.01 * s for s in range(5)}, {s: 0.0 for s in range(5)})
    assert up.decided and up.verdict() == "above" and up.p_value < 1e-6
    down = paired_difference({s: 0.0 for s in range(5)}, {s: 1.0 + 0.01 * s for s in range(5)})
    assert down.verdict() == "below"
    single = paired_difference({0: 1.0}, {0: 0.0})
    assert single.n == 1 and math.isnan(single.ci95) and single.verdict() == "indistinguishable from"


@dataclasses.dataclass
class _Settings:
    lr: float = 0.1


@dataclasses.dataclass
class _Info:
    matrix: list[list[float]] = dataclasses.field(default_factory=list)


CONTRACT = Contract(
    "toy", version=3, settings=_Settings, info=_Info,
    metrics=(Metric("acc", "test accuracy", higher_is_better=True), Metric("width", "hidden units", nullable=True)),
)


def _good(config, *, seed, device, workdir, artifacts):
    return StudyResult(metrics={"acc": 0.5, "width": None}, info={"matrix": [[1.0]]})


def _bad(config, *, seed, device, workdir, artifacts):
    return StudyResult(metrics={"acc": float("nan"), "width": 3})


@pytest.fixture
def toy_module(monkeypatch):
    mod = types.ModuleType("toy_contract_study")
    mod.CONTRACT, mod.good, mod.bad = CONTRACT, _good, _bad
    monkeypatch.setitem(sys.modules, "toy_contract_study", mod)
    return mod


def test_contract_checks_every_declared_metric():
    assert CONTRACT.check_metrics({"acc": 1, "width": None}) == []
    problems = CONTRACT.check_metrics({"acc": "x", "extra": 1.0})
    assert any("'extra' is not declared" in p for p in problems)
    assert any("'width' is missing" in p for p in problems)
    assert any("'acc' is 'x'" in p for p in problems)
    assert CONTRACT.check_metrics({"acc": None, "width": 1})[0].startswith("metric 'acc' is None")
    with pytest.raises(ValueError, match="twice"):
        Contract("dup", 1, None, (Metric("a", ""), Metric("a", "")))


def test_runner_records_contract_version_and_parse_types_it(toy_module, tmp_path):
    assert contract_for("toy_contract_study:good") is CONTRACT
    out = tmp_path / "r.json"
    run_cell("toy_contract_study:good", {"lr": 1}, study="toy", variant="v", seed=0, out=out, device="cpu")
    rec = read_record(out)
    assert rec["contract_version"] == 3
    typed = CONTRACT.parse(rec, where=str(out))
    assert typed.settings == _Settings(lr=1.0) and typed.info == _Info(matrix=[[1.0]])
    assert typed.metrics == {"acc": 0.5, "width": None}
    with pytest.raises(ConfigError, match="version 2"):
        CONTRACT.parse({**rec, "contract_version": 2})


def test_runner_refuses_bad_config_before_compute_and_bad_metrics_before_writing(toy_module, tmp_path):
    out = tmp_path / "r.json"
    with pytest.raises(ConfigError, match="unknown key 'lrr'"):
        run_cell("toy_contract_study:good", {"lrr": 1}, study="toy", variant="v", seed=0, out=out, device="cpu")
    with pytest.raises(ConfigError, match="'acc' is nan"):
        run_cell("toy_contract_study:bad", {}, study="toy", variant="v", seed=0, out=out, device="cpu")
    assert not out.exists()
