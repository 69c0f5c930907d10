"""A night as typed phases (tiny model): the record, the morning's hard checks, an exact experiments log."""

import dataclasses
import json

import pytest
import torch

from circadia.config import RollbackConfig
from circadia.home import Home
from circadia.journal import Journal, import_log
from circadia.sleep.evaluate import EvalResult, HarnessResult, eval_key, token_weighted
from circadia.sleep.night import run_night
from circadia.sleep.phases import PHASES
from circadia.sleep.policy import decide
from circadia.sleep.record import NightRecord, NightStatus, PhaseTimings, TrainSummary
from circadia.testing import tiny_night_config, tree_hashes, write_log
from circadian_core.config import ConfigError

TURNS = [(f"Tell me fact {i}, please.", f"Sure thing, Jordan! Fact {i} is that the sky is blue.") for i in range(10)]


def _home(tmp_path, turns=TURNS, name="day1"):
    home = Home(tmp_path / "home")
    home.init()
    import_log(write_log(tmp_path / f"{name}.jsonl", turns), Journal(home.memories))
    return home


def _rows(home):
    return [json.loads(x) for x in home.experiments.read_text().splitlines()]


def test_phase_names_are_the_timed_fields():
    assert [name for name, _ in PHASES] + ["recall", "total"] == [f.name for f in dataclasses.fields(PhaseTimings)]


def test_night_returns_a_typed_record_that_round_trips(tmp_path, tiny_model_dir):
    home = _home(tmp_path)
    lines = []
    rec = run_night(home, tiny_night_config(tiny_model_dir), model_dir=tiny_model_dir, log=lines.append)
    assert isinstance(rec, NightRecord) and rec.status is NightStatus.ACCEPTED and rec.attempt == 1
    assert rec.in_use is rec.post and rec.pre.cached is False and rec.mix.n_total == 3 * 2
    assert all(getattr(rec.timings, name) > 0 for name in ("read_route", "pre_eval", "train", "post_eval", "total"))
    row = _rows(home)[0]
    back = NightRecord.from_json(row)
    assert back.to_json() == rec.to_json() and back.status is NightStatus.ACCEPTED
    with pytest.raises(ConfigError, match="unknown key 'surprise'"):
        NightRecord.from_json({**row, "surprise": 1})
    # the log shows every phase's outcome and the training loss of every step
    text = "\n".join(lines)
    assert "night 1: pre " in text and "night 1: post" in text and "ACCEPTED" in text
    assert sum("night 1: step" in line and "loss" in line for line in lines) == 3


def test_second_night_reuses_the_first_nights_evaluation(tmp_path, tiny_model_dir):
    home = _home(tmp_path)
    first = run_night(home, tiny_night_config(tiny_model_dir), model_dir=tiny_model_dir, log=None)
    import_log(write_log(tmp_path / "day2.jsonl", [(u + " Again.", a) for u, a in TURNS]), Journal(home.memories))
    second = run_night(home, tiny_night_config(tiny_model_dir), model_dir=tiny_model_dir, log=None)
    assert second.pre.cached and second.pre.harness == first.post.harness
    assert second.pre.old_core_loss == first.post.old_core_loss
    # held-out chats of day 1 were scored by night 1's post-evaluation with the same model: reused exactly
    cache = home.load_state().eval_cache
    assert list(cache) == [eval_key(tiny_model_dir, "adapters/night-002", tiny_night_config(tiny_model_dir))]


def _result(loss=1.0, core=0.5, rate=0.5) -> EvalResult:
    return EvalResult(heldout_loss=loss, n_heldout=1, old_core_loss=core, harness=HarnessResult(rate))


def test_policy_hard_checks_ignore_the_rollback_flag():
    ok = TrainSummary(losses=[1.0], tokens=1, aborted_nan=False)
    off = RollbackConfig(enabled=False)
    assert decide(_result(), _result(), ok, RollbackConfig()).accept(True)
    soft = decide(_result(rate=0.9), _result(rate=0.1), ok, RollbackConfig())
    assert soft.reasons and not soft.hard and not soft.accept(True) and soft.accept(False)
    for post, train in ((_result(loss=float("nan")), ok), (_result(core=float("inf")), ok),
                        (_result(), dataclasses.replace(ok, weights_finite=False))):
        v = decide(_result(), post, train, off)
        assert v.hard and not v.accept(False) and v.would_roll_back


def test_token_weighted_mean():
    assert token_weighted([(2.0, 1), (6.0, 3)]) == 2.0
    assert token_weighted([(0.0, 0)]) is None


@pytest.fixture
def poisoned_step(monkeypatch):
    """AdamW steps that leave an infinite LoRA weight behind (the losses seen stay finite)."""
    real = torch.optim.AdamW.step

    def step(self, *a, **k):
        out = real(self, *a, **k)
        with torch.no_grad():
            self.param_groups[0]["params"][0].view(-1)[0] = float("inf")
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", step)


def test_non_finite_adapter_is_never_accepted_even_without_rollback(tmp_path, tiny_model_dir, poisoned_step):
    home = _home(tmp_path)
    cfg = tiny_night_config(tiny_model_dir, rollback={"enabled": False}, train={"iters": 1})
    rec = run_night(home, cfg, model_dir=tiny_model_dir, log=None)
    assert not rec.train.aborted_nan and rec.train.weights_finite is False
    assert rec.status is NightStatus.ROLLED_BACK and "non-finite weights" in " ".join(rec.rollback_reasons)
    state = home.load_state()
    assert state.current_adapter is None and not (home.root / "adapters" / "night-001").exists()
    assert (home.root / "adapters" / "rejected" / "night-001").exists()


class _Killed(Exception):
    pass


def _kill(*_):
    raise _Killed


@pytest.mark.parametrize("when", ["before_state", "after_state"])
def test_a_kill_around_the_state_write_leaves_one_row_per_attempt(tmp_path, tiny_model_dir, when):
    home = _home(tmp_path)
    cfg = tiny_night_config(tiny_model_dir)
    with pytest.raises(_Killed):
        run_night(home, cfg, model_dir=tiny_model_dir, log=None, hooks={when: _kill})
    assert not home.experiments.exists()  # the row is written only after the state
    state = home.load_state()
    adapters_before = tree_hashes(home.root / "adapters")
    rec = run_night(home, cfg, model_dir=tiny_model_dir, log=None)
    rows = _rows(home)
    if when == "before_state":  # nothing was committed: night 1 reruns and logs once
        assert state.nights == 0 and rec.night == 1 and rec.status is NightStatus.ACCEPTED
        assert [(r["night"], r["status"]) for r in rows] == [(1, "accepted")]
    else:  # night 1 was committed: its row is recovered from night.json, then night 2 finds nothing new
        assert state.nights == 1 and rec.night == 2 and rec.status is NightStatus.SKIPPED
        assert [(r["night"], r["status"]) for r in rows] == [(1, "accepted"), (2, "skipped")]
        assert tree_hashes(home.root / "adapters") == adapters_before
    assert len({r["attempt"] for r in rows}) == len(rows)
    # and a third run adds exactly its own row
    run_night(home, cfg, model_dir=tiny_model_dir, log=None)
    assert len(_rows(home)) == len(rows) + 1
