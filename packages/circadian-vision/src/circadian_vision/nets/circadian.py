"""The circadian network: predictive coding with wake/sleep structural plasticity (NumPy).

Wake (every minibatch), on top of :class:`PredictiveCodingNet`:

* chemicals: each unit of the adaptive (last) hidden layer accumulates its usage
  ``mean_b |mu_bj|`` (plain, saturating or dual fast/slow dynamics,
  :mod:`~circadian_vision.mechanisms.chemicals`);
* gating: unit j's local updates are multiplied by ``p_j = clip(exp(-s_j c_j), p_min, 1)`` with a
  constant or importance/age-adaptive sensitivity (:mod:`~circadian_vision.mechanisms.gating`);
* reward modulation: the learning rate is scaled by the batch energy relative to its EMA;
* the batch enters a replay buffer, each example with its feed-forward loss *after* the update as
  priority (the prototype's order: ``_store_replay_snapshot`` runs after the weight update);
* the sleep trigger (adaptive: plateau + chemical spread + spacing; or fixed) is checked.

Sleep is :func:`circadian_vision.mechanisms.sleep.sleep_cycle`, the same code the torch
:class:`~circadian_vision.heads.circadian.CircadianHead` runs. The rollback guard decides on
held-out slices of the TRAINING data: with several slices (one per phase of a continual task) the
loss it compares is the mean of the per-slice mean losses, so every phase weighs the same however
few rows it holds out. The hidden width stays within ``[min_hidden, max_hidden]``; every sleep is
logged in ``events``.

A trunk of hidden layers before the adaptive one (``trunk``) learns as the prototype's circadian
network's does (``trunk_rule: backprop``: the adaptive layer's prediction error backpropagated).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Literal

import numpy as np

from circadian_vision.mechanisms import chemicals as chem_mod
from circadian_vision.mechanisms import gating as gating_mod
from circadian_vision.mechanisms.budget import BudgetConfig
from circadian_vision.mechanisms.chemicals import ChemicalConfig, steady_gain
from circadian_vision.mechanisms.gating import GatingConfig
from circadian_vision.mechanisms.homeostasis import HomeostasisConfig
from circadian_vision.mechanisms.prune import PruneConfig
from circadian_vision.mechanisms.replay import ReplayBuffer, ReplayConfig
from circadian_vision.mechanisms.reward import RewardConfig, RewardModulator
from circadian_vision.mechanisms.rollback import RollbackConfig, restore, snapshot, tally_sleep
from circadian_vision.mechanisms.sleep import UNIT_VECTORS, Units, sleep_cycle
from circadian_vision.mechanisms.split import SplitConfig, distinct_units
from circadian_vision.mechanisms.trigger import TriggerConfig, should_sleep, trigger_conditions
from circadian_vision.nets.predictive_coding import PredictiveCodingConfig, PredictiveCodingNet, Settled


@dataclasses.dataclass(frozen=True)
class CircadianConfig:
    # predictive-coding core
    hidden: int = 32
    lr: float = 0.1
    inference_steps: int = 20
    inference_lr: float = 0.1
    init_scale: float = 1.0
    init_std: float | None = None  # N(0, init_std^2) instead of the fan-in scaled init
    trunk: tuple[int, ...] = ()  # hidden layers before the adaptive one (NumPy network only)
    trunk_rule: Literal["pc", "backprop"] = "backprop"
    binary: bool = False  # one sigmoid output on a two-class task (NumPy network only)
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
                                      inference_lr=self.inference_lr, init_scale=self.init_scale,
                                      init_std=self.init_std, trunk=self.trunk, trunk_rule=self.trunk_rule,
                                      binary=self.binary)


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
        self.gain = steady_gain(self.ccfg.chemicals)
        self.reward = RewardModulator(self.ccfg.reward)
        self.replay_buffer = ReplayBuffer(self.ccfg.replay.capacity, input_dim)
        self.replay_rng = np.random.default_rng([seed, 1])
        self.split_rng = np.random.default_rng([seed, 3])
        self.energies: list[float] = []
        self.steps_since_sleep = 0
        self.holdouts: list[tuple[np.ndarray, np.ndarray]] = []
        self.progress: float | None = None
        self.hidden_start = h
        self.sleep_seconds = 0.0
        self.totals = {"sleeps": 0, "splits": 0, "prunes": 0, "rollbacks": 0, "split_attempts": 0,
                       "prune_attempts": 0, "skipped": 0}
        self.last_lr_scale = 1.0
        self.last_gate_mean = 1.0
        # adaptive trigger: on how many wake steps each condition held (diagnostics, deterministic)
        self.trigger_tally = {"checks": 0, "spacing": 0, "plateau": 0, "spread": 0}

    # ---- state ----------------------------------------------------------------------------
    @property
    def chemical(self) -> np.ndarray:
        return chem_mod.chemical_level(self.chem_fast, self.chem_slow, self.ccfg.chemicals)

    def state(self) -> dict[str, Any]:
        return {**super().state(), **{k: getattr(self, k) for k in UNIT_VECTORS}}

    def load_state(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def set_holdout(self, x: np.ndarray, y: np.ndarray) -> None:
        """One held-out slice of the TRAINING data for the rollback guard."""
        self.set_holdouts([(x, y)])

    def set_holdouts(self, slices: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Held-out slices of the TRAINING data (e.g. one per phase), weighted equally by the guard."""
        self.holdouts = [(np.asarray(x), np.asarray(y)) for x, y in slices if len(y)]

    def set_progress(self, fraction: float | None) -> None:
        """Training progress in [0, 1] for the budget's progress windows (None: unknown)."""
        self.progress = fraction

    def set_sleep_every(self, every: int) -> None:
        """Switch to a fixed schedule of one sleep every ``every`` steps, counted from now."""
        trigger = dataclasses.replace(self.ccfg.trigger, kind="fixed", every=int(every))
        self.ccfg = dataclasses.replace(self.ccfg, trigger=trigger)
        self.steps_since_sleep = 0

    # ---- wake -----------------------------------------------------------------------------
    def plasticity(self, activity: np.ndarray) -> np.ndarray:
        g = self.ccfg.gating
        if not g.enabled:
            return np.ones(self.hidden_width)
        s = gating_mod.sensitivity_for(g, self.W_out, activity, self.age)
        return gating_mod.gate(self.chemical, s, g.p_min)

    def _apply(self, s: Settled, lr: float, p: np.ndarray) -> None:
        upd = self.local_updates(s)
        upd["W_in"] = [gating_mod.gate_rows(upd["W_in"][0], p)]
        upd["b_in"] = [gating_mod.gate_rows(upd["b_in"][0], p)]
        if self.ccfg.gating.gate_output:
            upd["W_out"] = [gating_mod.gate_columns(upd["W_out"][0], p)]
        self.apply_updates(upd, lr)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        cfg = self.ccfg
        s = self.settle(x, y)
        u = chem_mod.usage(s.mu)
        self.chem_fast, self.chem_slow = chem_mod.update_chemicals(self.chem_fast, self.chem_slow, u, cfg.chemicals)
        self.mean_act = cfg.activity_decay * self.mean_act + (1 - cfg.activity_decay) * s.mu.mean(0)
        p = self.plasticity(u)
        scale = self.reward.step(s.energy)
        self._apply(s, cfg.lr * scale, p)
        if cfg.replay.enabled:  # priority: each example's feed-forward loss after this update
            self.replay_buffer.add(x, y, self.sample_loss(x, y))
        self.last_lr_scale, self.last_gate_mean = scale, float(p.mean())
        self.age += 1
        self.energies.append(s.energy)
        self.steps += 1
        self.steps_since_sleep += 1
        if cfg.trigger.kind == "adaptive":
            held = trigger_conditions(self.energies, self.chemical, self.steps_since_sleep, cfg.trigger, self.gain)
            self.trigger_tally["checks"] += 1
            for k, v in held.items():
                self.trigger_tally[k] += int(v)
        if should_sleep(self.energies, self.chemical, self.steps_since_sleep, cfg.trigger, self.gain):
            self.sleep()
        return s.energy

    # ---- the sleep host (mechanisms.sleep.SleepHost) -----------------------------------------
    def get_units(self) -> Units:
        return Units(self.W_in, self.b_in, self.W_out, self.b_out, {k: getattr(self, k) for k in UNIT_VECTORS})

    def set_units(self, units: Units) -> None:
        self.W_in, self.b_in, self.W_out, self.b_out = units.W_in, units.b_in, units.W_out, units.b_out
        for k, v in units.vectors.items():
            setattr(self, k, v)

    def state_snapshot(self) -> dict[str, Any]:
        return snapshot(self.state())

    def state_restore(self, snap: dict[str, Any]) -> None:
        self.load_state(restore(snap))

    def holdout_loss(self) -> float | None:
        if not self.holdouts:
            return None
        return float(np.mean([self.loss(x, y) for x, y in self.holdouts]))

    def standard_normal(self, rows: int, cols: int) -> np.ndarray:
        return self.split_rng.standard_normal((rows, cols))

    def replay(self, steps: int) -> int:
        rc = self.ccfg.replay
        if not rc.enabled or len(self.replay_buffer) == 0 or steps <= 0:
            return 0
        for _ in range(steps):
            idx = self.replay_buffer.sample(self.replay_rng, rc.batch_size, self.num_classes, rc.alpha)
            x, y = self.replay_buffer.x[idx], self.replay_buffer.y[idx]
            s = self.settle(x, y)
            self._apply(s, self.ccfg.lr * rc.lr_scale, self.plasticity(chem_mod.usage(s.mu)))
            self.replay_buffer.update(idx, self.sample_loss(x, y))
        return steps

    # ---- sleep ----------------------------------------------------------------------------
    def sleep(self) -> dict[str, Any]:
        """One sleep (:func:`~circadian_vision.mechanisms.sleep.sleep_cycle`); returns and logs its event."""
        t0 = time.perf_counter()
        event = sleep_cycle(self, self.ccfg, progress=self.progress)
        self.energies = []
        self.steps_since_sleep = 0
        if event["skipped"]:
            self.totals["skipped"] += 1
        else:
            tally_sleep(self.totals, splits=event["splits"], prunes=event["prunes"], rolled_back=event["rolled_back"])
        seconds = time.perf_counter() - t0
        self.sleep_seconds += seconds
        event = {"step": self.steps, **event, "seconds": seconds}
        self.events.append(event)
        return event

    # ---- reporting ------------------------------------------------------------------------
    def distinct_units(self) -> int:
        """Units of the adaptive layer that differ (incoming rows with cosine > 0.999 count once)."""
        return distinct_units(self.W_in)

    def stats(self) -> dict[str, float]:
        return {
            **{k: float(v) for k, v in self.totals.items()},
            "hidden_start": float(self.hidden_start),
            "hidden_end": float(self.hidden_width),
            "distinct_end": float(self.distinct_units()),
            "sleep_s": self.sleep_seconds,
        }
