"""The circadian network: predictive coding with wake/sleep structural plasticity (NumPy).

Wake (every minibatch), on top of :class:`PredictiveCodingNet`:

* chemicals: each hidden unit accumulates its usage ``mean_b |mu_bj|`` (plain, saturating or
  dual fast/slow dynamics, :mod:`~circadian_vision.mechanisms.chemicals`);
* gating: unit j's local updates are multiplied by ``p_j = clip(exp(-s_j c_j), p_min, 1)`` with a
  constant or importance/age-adaptive sensitivity (:mod:`~circadian_vision.mechanisms.gating`);
* reward modulation: the learning rate is scaled by the batch energy relative to its EMA;
* the batch enters a replay buffer with its per-sample loss as priority;
* the sleep trigger (adaptive: plateau + chemical spread + spacing; or fixed) is checked.

Sleep: snapshot -> budget -> split high-chemical units (function-preserving) -> prune low-chemical
old units (immediate or gradual) -> class-balanced prioritized replay -> homeostatic norm control ->
rollback guard on a held-out slice of the TRAINING data -> chemicals partly reset. The hidden width
stays within ``[min_hidden, max_hidden]``. Every sleep is logged in ``events``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from circadian_vision.mechanisms import chemicals as chem_mod
from circadian_vision.mechanisms import gating as gating_mod
from circadian_vision.mechanisms.budget import BudgetConfig, sleep_budget
from circadian_vision.mechanisms.chemicals import ChemicalConfig
from circadian_vision.mechanisms.gating import GatingConfig
from circadian_vision.mechanisms.homeostasis import HomeostasisConfig, norm_control
from circadian_vision.mechanisms.prune import (
    PruneConfig,
    compensate_bias,
    fade_columns,
    prune_candidates,
    prune_units,
    remove_units,
)
from circadian_vision.mechanisms.replay import ReplayBuffer, ReplayConfig
from circadian_vision.mechanisms.reward import RewardConfig, RewardModulator
from circadian_vision.mechanisms.rollback import RollbackConfig, restore, sleep_verdict, snapshot, tally_sleep
from circadian_vision.mechanisms.split import SplitConfig, split_candidates, split_units, split_vector
from circadian_vision.mechanisms.trigger import TriggerConfig, should_sleep
from circadian_vision.nets._common import bce_from_logits
from circadian_vision.nets.predictive_coding import PredictiveCodingConfig, PredictiveCodingNet


@dataclasses.dataclass(frozen=True)
class CircadianConfig:
    # predictive-coding core
    hidden: int = 32
    lr: float = 0.1
    inference_steps: int = 20
    inference_lr: float = 0.1
    init_scale: float = 1.0
    # bounded width
    min_hidden: int = 8
    max_hidden: int = 96
    # one block per mechanism (each the mechanism module's own config)
    chemicals: ChemicalConfig = dataclasses.field(default_factory=ChemicalConfig)
    gating: GatingConfig = dataclasses.field(default_factory=GatingConfig)
    reward: RewardConfig = dataclasses.field(default_factory=RewardConfig)
    trigger: TriggerConfig = dataclasses.field(default_factory=TriggerConfig)
    budget: BudgetConfig = dataclasses.field(default_factory=BudgetConfig)
    split: SplitConfig = dataclasses.field(default_factory=SplitConfig)
    prune: PruneConfig = dataclasses.field(default_factory=PruneConfig)
    homeostasis: HomeostasisConfig = dataclasses.field(default_factory=HomeostasisConfig)
    replay: ReplayConfig = dataclasses.field(default_factory=ReplayConfig)
    rollback: RollbackConfig = dataclasses.field(default_factory=RollbackConfig)
    sleep_chemical_scale: float = 0.5  # chemicals are multiplied by this after every sleep
    activity_decay: float = 0.9  # EMA of the signed mean activity (prune compensation)

    def __post_init__(self) -> None:
        if not 1 <= self.min_hidden <= self.hidden <= self.max_hidden:
            raise ValueError(
                f"circadian: need 1 <= min_hidden ({self.min_hidden}) <= hidden ({self.hidden}) "
                f"<= max_hidden ({self.max_hidden})"
            )

    def pc(self) -> PredictiveCodingConfig:
        return PredictiveCodingConfig(hidden=self.hidden, lr=self.lr, inference_steps=self.inference_steps,
                                      inference_lr=self.inference_lr, init_scale=self.init_scale)


# everything sized by the hidden width: rows of W_in/b_in, columns of W_out, per-unit vectors
_UNIT_VECTORS = ("chem_fast", "chem_slow", "age", "mean_act", "fade_count")


class CircadianNet(PredictiveCodingNet):
    name = "circadian"
    config_class = CircadianConfig

    def __init__(self, input_dim: int, num_classes: int, cfg: CircadianConfig | None = None, *, seed: int = 0) -> None:
        self.ccfg = cfg or CircadianConfig()
        super().__init__(input_dim, num_classes, self.ccfg.pc(), seed=seed)
        h = self.ccfg.hidden
        self.chem_fast = np.zeros(h)
        self.chem_slow = np.zeros(h)
        self.age = np.zeros(h)
        self.mean_act = np.zeros(h)
        self.fade_count = np.zeros(h)
        self.reward = RewardModulator(self.ccfg.reward)
        self.replay = ReplayBuffer(self.ccfg.replay.capacity, input_dim)
        self.replay_rng = np.random.default_rng([seed, 1])
        self.energies: list[float] = []
        self.steps_since_sleep = 0
        self.holdout: tuple[np.ndarray, np.ndarray] | None = None
        self.hidden_start = h
        self.sleep_seconds = 0.0
        self.totals = {"sleeps": 0, "splits": 0, "prunes": 0, "rollbacks": 0, "split_attempts": 0,
                       "prune_attempts": 0}
        self.last_lr_scale = 1.0
        self.last_gate_mean = 1.0

    # ---- state ----------------------------------------------------------------------------
    @property
    def chemical(self) -> np.ndarray:
        return chem_mod.chemical_level(self.chem_fast, self.chem_slow, self.ccfg.chemicals)

    def state(self) -> dict[str, Any]:
        return {**super().state(), **{k: getattr(self, k) for k in _UNIT_VECTORS}}

    def load_state(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def set_holdout(self, x: np.ndarray, y: np.ndarray) -> None:
        """The held-out slice of the TRAINING data the rollback guard decides on."""
        self.holdout = (np.asarray(x), np.asarray(y))

    # ---- wake -----------------------------------------------------------------------------
    def plasticity(self, activity: np.ndarray) -> np.ndarray:
        g = self.ccfg.gating
        if not g.enabled:
            return np.ones(self.hidden_width)
        s = gating_mod.sensitivity_for(g, self.W_out, activity, self.age)
        return gating_mod.gate(self.chemical, s, g.p_min)

    def _apply(self, x: np.ndarray, Y: np.ndarray, mu: np.ndarray, h: np.ndarray, lr: float, p: np.ndarray) -> None:
        dW_in, db_in, dW_out, db_out = self.local_updates(x, Y, mu, h)
        self.W_in += lr * gating_mod.gate_rows(dW_in, p)
        self.b_in += lr * gating_mod.gate_rows(db_in, p)
        self.W_out += lr * (gating_mod.gate_columns(dW_out, p) if self.ccfg.gating.gate_output else dW_out)
        self.b_out += lr * db_out

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        cfg = self.ccfg
        Y, mu, h, energy = self.settle(x, y)
        u = chem_mod.usage(mu)
        self.chem_fast, self.chem_slow = chem_mod.update_chemicals(self.chem_fast, self.chem_slow, u, cfg.chemicals)
        self.mean_act = cfg.activity_decay * self.mean_act + (1 - cfg.activity_decay) * mu.mean(0)
        p = self.plasticity(u)
        scale = self.reward.step(energy)
        if cfg.replay.enabled:  # priority: the feedforward loss of each example before this update
            self.replay.add(x, y, bce_from_logits(mu @ self.W_out.T + self.b_out, Y))
        self._apply(x, Y, mu, h, cfg.lr * scale, p)
        self.last_lr_scale, self.last_gate_mean = scale, float(p.mean())
        self.age += 1
        self.energies.append(energy)
        self.steps += 1
        self.steps_since_sleep += 1
        if should_sleep(self.energies, self.chemical, self.steps_since_sleep, cfg.trigger):
            self.sleep()
        return energy

    # ---- sleep ----------------------------------------------------------------------------
    def _set_units(self, W_in: np.ndarray, b_in: np.ndarray, W_out: np.ndarray, vectors: dict[str, np.ndarray]) -> None:
        self.W_in, self.b_in, self.W_out = W_in, b_in, W_out
        for k, v in vectors.items():
            setattr(self, k, v)

    def _remove(self, idx: list[int], compensate: bool) -> None:
        if not idx:
            return
        if compensate:
            self.b_out = compensate_bias(self.b_out, self.W_out, idx, self.mean_act)
        W_in, b_in, W_out = prune_units(self.W_in, self.b_in, self.W_out, idx)
        self._set_units(W_in, b_in, W_out, {k: remove_units(getattr(self, k), idx) for k in _UNIT_VECTORS})

    def _holdout_loss(self) -> float | None:
        if self.holdout is None or len(self.holdout[1]) == 0:
            return None
        return self.loss(*self.holdout)

    def _replay(self, steps: int) -> int:
        rc = self.ccfg.replay
        if not rc.enabled or len(self.replay) == 0 or steps <= 0:
            return 0
        for _ in range(steps):
            idx = self.replay.sample(self.replay_rng, rc.batch_size, self.num_classes, rc.alpha)
            x, y = self.replay.x[idx], self.replay.y[idx]
            Y, mu, h, _ = self.settle(x, y)
            self._apply(x, Y, mu, h, self.ccfg.lr * rc.lr_scale, self.plasticity(chem_mod.usage(mu)))
            z = self.hidden(x) @ self.W_out.T + self.b_out
            self.replay.update(idx, bce_from_logits(z, Y))
        return steps

    def sleep(self) -> dict[str, Any]:
        """One sleep; returns (and logs) its event."""
        t0 = time.perf_counter()
        cfg = self.ccfg
        before_state = snapshot(self.state())
        loss_before = self._holdout_loss()
        width_before = self.hidden_width
        chem = self.chemical

        # gradual pruning: fade the marked units further, remove those that have faded long enough
        removed_faded: list[int] = []
        if cfg.prune.enabled and cfg.prune.mode == "gradual":
            marked = [int(j) for j in np.flatnonzero(self.fade_count > 0)]
            removed_faded = [j for j in marked if self.fade_count[j] >= cfg.prune.fade_sleeps]
            still = [j for j in marked if j not in removed_faded]
            self.W_out = fade_columns(self.W_out, still, cfg.prune.fade)
            self.fade_count[still] += 1
            self._remove(removed_faded, compensate=False)
            chem = self.chemical
        fading = [int(j) for j in np.flatnonzero(self.fade_count > 0)]

        budget = sleep_budget(chem, self.hidden_width - len(fading), cfg.min_hidden, cfg.max_hidden, cfg.budget)
        # split
        split_idx = split_candidates(chem, budget.n_split, cfg.split.z, exclude=fading) if cfg.split.enabled else []
        if split_idx:
            W_in, b_in, W_out = split_units(self.W_in, self.b_in, self.W_out, split_idx, cfg.split.share)
            k = cfg.split.child_chemical
            vectors = {
                "chem_fast": split_vector(self.chem_fast, split_idx, k, k),
                "chem_slow": split_vector(self.chem_slow, split_idx, k, k),
                "age": split_vector(self.age, split_idx, child_value=0.0),
                "mean_act": split_vector(self.mean_act, split_idx),
                "fade_count": split_vector(self.fade_count, split_idx, child_value=0.0),
            }
            self._set_units(W_in, b_in, W_out, vectors)
        # prune (children and fading units are not candidates)
        prune_idx: list[int] = []
        if cfg.prune.enabled:
            children = list(range(width_before, self.hidden_width))
            prune_idx = prune_candidates(self.chemical, self.age, budget.n_prune, cfg.prune.min_age,
                                         cfg.prune.fraction, exclude=fading + children)
            if cfg.prune.mode == "immediate":
                self._remove(prune_idx, compensate=cfg.prune.compensate)
            elif prune_idx:
                self.W_out = fade_columns(self.W_out, prune_idx, cfg.prune.fade)
                self.fade_count[prune_idx] = 1
        replayed = self._replay(budget.replay_steps)
        if cfg.homeostasis.enabled:
            self.W_in = norm_control(self.W_in, cfg.homeostasis.norm_max, cfg.homeostasis.rate)
        loss_after = self._holdout_loss()

        rolled_back = sleep_verdict(cfg.rollback, loss_before, loss_after)
        n_pruned = len(removed_faded) + (len(prune_idx) if cfg.prune.mode == "immediate" else 0)
        if rolled_back:
            self.load_state(restore(before_state))
        self.chem_fast = cfg.sleep_chemical_scale * self.chem_fast
        self.chem_slow = cfg.sleep_chemical_scale * self.chem_slow
        self.energies = []
        self.steps_since_sleep = 0

        tally_sleep(self.totals, splits=len(split_idx), prunes=n_pruned, rolled_back=rolled_back)
        seconds = time.perf_counter() - t0
        self.sleep_seconds += seconds
        event = {
            "step": self.steps,
            "hidden_before": width_before,
            "hidden_after": self.hidden_width,
            "splits": len(split_idx),
            "prunes": n_pruned,
            "marked": len(prune_idx) if cfg.prune.mode == "gradual" else 0,
            "replay_steps": replayed,
            "budget_scale": budget.scale,
            "holdout_loss_before": loss_before,
            "holdout_loss_after": loss_after,
            "rolled_back": rolled_back,
            "seconds": seconds,
        }
        self.events.append(event)
        return event

    # ---- reporting ------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        return {
            **{k: float(v) for k, v in self.totals.items()},
            "hidden_start": float(self.hidden_start),
            "hidden_end": float(self.hidden_width),
            "sleep_s": self.sleep_seconds,
        }
