"""CircadianHead: the predictive coding head with wake/sleep structural plasticity, in torch.

The mechanisms are the shared, array-agnostic functions of :mod:`circadian_vision.mechanisms`
(the same code the NumPy :class:`~circadian_vision.nets.circadian.CircadianNet` runs), applied to
torch tensors on any device, vectorized over hidden units; the config is the NumPy network's
:class:`~circadian_vision.nets.circadian.CircadianConfig`, so params.yaml uses the same knobs for
both. What is torch-specific here: the predictive coding core (softmax output,
:class:`~circadian_vision.heads.predictive_coding.PredictiveCodingHead`), a replay ring buffer that
lives on the device (sampled with the shared ``replay_weights``), and wake/sleep time accounting.

Wake (every minibatch): inference and local updates as the PC head, plus chemicals (usage
``mean |mu|``), gating of each unit's incoming updates, reward-modulated learning rate (from the
batch energy), replay memory (priority: each example's loss after the update, as the prototype and
the NumPy network), and the sleep trigger (adaptive or fixed).

Sleep is :func:`circadian_vision.mechanisms.sleep.sleep_cycle`, the NumPy network's sleep, line for
line: this head is its :class:`~circadian_vision.mechanisms.sleep.SleepHost` (``W1, b1, W2, b2``
are the ``W_in, b_in, W_out, b_out`` of the shared layout).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from circadian_vision.heads.base import _synchronizer
from circadian_vision.heads.predictive_coding import PredictiveCodingConfig, PredictiveCodingHead
from circadian_vision.mechanisms import chemicals as chem_mod
from circadian_vision.mechanisms import gating as gating_mod
from circadian_vision.mechanisms.chemicals import steady_gain
from circadian_vision.mechanisms.replay import replay_weights
from circadian_vision.mechanisms.reward import RewardModulator
from circadian_vision.mechanisms.rollback import restore, snapshot, tally_sleep
from circadian_vision.mechanisms.sleep import UNIT_VECTORS, Units, sleep_cycle
from circadian_vision.mechanisms.split import distinct_units
from circadian_vision.mechanisms.trigger import should_sleep
from circadian_vision.nets.circadian import CircadianConfig  # one config for the NumPy and torch networks

_WEIGHTS = ("W1", "b1", "W2", "b2")


class CircadianHead(PredictiveCodingHead):
    name = "circadian"

    def __init__(self, in_dim: int, num_classes: int, config: CircadianConfig | None = None, *, seed: int = 0) -> None:
        cfg = config or CircadianConfig()
        if cfg.trunk or cfg.binary:
            raise ValueError("CircadianHead has one hidden layer and a softmax output: trunk and binary are "
                             "options of the NumPy CircadianNet only")
        pc = PredictiveCodingConfig(hidden=cfg.hidden, lr=cfg.lr, inference_steps=cfg.inference_steps,
                                    inference_lr=cfg.inference_lr, init_scale=cfg.init_scale)
        super().__init__(in_dim, num_classes, pc, seed=seed)
        self.ccfg = cfg
        self.gen = torch.Generator().manual_seed(seed + 7919)  # replay sampling
        self.split_gen = torch.Generator().manual_seed(seed + 104729)  # split symmetry breaking
        for name in UNIT_VECTORS:
            self.register_buffer(name, torch.zeros(cfg.hidden))
        cap = cfg.replay.capacity if cfg.replay.enabled else 1
        self.register_buffer("mem_x", torch.zeros(cap, in_dim))
        self.register_buffer("mem_y", torch.zeros(cap, dtype=torch.long))
        self.register_buffer("mem_q", torch.zeros(cap))
        self.mem_next = 0
        self.mem_size = 0
        self.gain = steady_gain(cfg.chemicals)
        self.reward = RewardModulator(cfg.reward)
        self.energies: list[float] = []
        self.steps = 0
        self.steps_since_sleep = 0
        self.holdouts: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.totals = {"sleeps": 0, "splits": 0, "prunes": 0, "rollbacks": 0, "split_attempts": 0,
                       "prune_attempts": 0, "skipped": 0}
        self.hidden_start = cfg.hidden
        self.hidden_max = cfg.hidden
        self.wake_s = 0.0
        self.sleep_s = 0.0
        self._wake_t0: float | None = None

    # ---- state -------------------------------------------------------------------------------
    def set_holdout(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The held-out slice of TRAINING data the rollback guard decides on (never the test set)."""
        self.set_holdouts([(x, y)])

    def set_holdouts(self, slices: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Several held-out slices, weighted equally (the guard's loss is the mean of their mean losses)."""
        self.holdouts = [(x, y) for x, y in slices if len(y)]

    @property
    def chemical(self) -> torch.Tensor:
        return chem_mod.chemical_level(self.chem_fast, self.chem_slow, self.ccfg.chemicals)

    def unit_state(self) -> dict[str, torch.Tensor]:
        """Everything a sleep changes: weights and per-unit vectors."""
        return {k: getattr(self, k) for k in (*_WEIGHTS, *UNIT_VECTORS)}

    def load_unit_state(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            if name in _WEIGHTS:
                setattr(self, name, nn.Parameter(value.contiguous(), requires_grad=False))
            else:
                setattr(self, name, value.contiguous())  # a registered buffer, replaced

    # ---- wake --------------------------------------------------------------------------------
    def plasticity(self, activity: torch.Tensor) -> torch.Tensor:
        """Per-unit gate ``clip(exp(-s c), p_min, 1)`` (constant or importance/age sensitivity)."""
        g = self.ccfg.gating
        if not g.enabled:
            return torch.ones_like(self.chem_fast)
        s = gating_mod.sensitivity_for(g, self.W2, activity, self.age)
        return gating_mod.gate(self.chemical, s, g.p_min)

    def _learn(self, x: torch.Tensor, r: Any, lr: float, p: torch.Tensor) -> None:
        grads = self.local_gradients(x, r)
        grads["W1"] = gating_mod.gate_rows(grads["W1"], p)
        grads["b1"] = gating_mod.gate_rows(grads["b1"], p)
        if self.ccfg.gating.gate_output:
            grads["W2"] = gating_mod.gate_columns(grads["W2"], p)
        self.apply_gradients(grads, lr)

    @torch.no_grad()
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cfg = self.ccfg
        if self._wake_t0 is None:
            self._wake_t0 = time.perf_counter()
        r = self.infer(x, y)
        u = chem_mod.usage(r.mu)
        self.chem_fast, self.chem_slow = chem_mod.update_chemicals(self.chem_fast, self.chem_slow, u, cfg.chemicals)
        self.mean_act = cfg.activity_decay * self.mean_act + (1 - cfg.activity_decay) * r.mu.mean(0)
        p = self.plasticity(u)
        energy = float(r.energy)
        scale = self.reward.step(energy)
        self._learn(x, r, cfg.lr * scale, p)
        self.age = self.age + 1
        if cfg.replay.enabled:  # priority: each example's loss after this update
            self._remember(x, y, self._sample_loss(x, y))
        self.energies.append(energy)
        self.steps += 1
        self.steps_since_sleep += 1
        if should_sleep(self.energies, self.chemical, self.steps_since_sleep, cfg.trigger, self.gain):
            self.sleep()
        return r.energy

    def _sample_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample feed-forward cross-entropy (the replay priority)."""
        return nn.functional.cross_entropy(self.logits(x), y, reduction="none")

    def _remember(self, x: torch.Tensor, y: torch.Tensor, priority: torch.Tensor) -> None:
        """Ring buffer on the head's device (the NumPy ReplayBuffer would cost a copy per step)."""
        cap = self.mem_x.shape[0]
        n = min(len(y), cap)
        idx = (torch.arange(n, device=x.device) + self.mem_next) % cap
        self.mem_x[idx] = x[-n:]
        self.mem_y[idx] = y[-n:]
        self.mem_q[idx] = priority[-n:]
        self.mem_next = (self.mem_next + n) % cap
        self.mem_size = min(self.mem_size + n, cap)

    def end_epoch(self, epoch: int) -> None:
        if self._wake_t0 is not None:
            _synchronizer(self.W1.device)()
            self.wake_s += time.perf_counter() - self._wake_t0
            self._wake_t0 = None

    # ---- the sleep host (mechanisms.sleep.SleepHost) -------------------------------------------
    def get_units(self) -> Units:
        return Units(self.W1, self.b1, self.W2, self.b2, {k: getattr(self, k) for k in UNIT_VECTORS})

    def set_units(self, units: Units) -> None:
        self.load_unit_state({"W1": units.W_in, "b1": units.b_in, "W2": units.W_out, "b2": units.b_out,
                              **units.vectors})

    def state_snapshot(self) -> dict[str, torch.Tensor]:
        return snapshot(self.unit_state())

    def state_restore(self, snap: dict[str, torch.Tensor]) -> None:
        self.load_unit_state(restore(snap))

    def holdout_loss(self) -> float | None:
        if not self.holdouts:
            return None
        losses = [float(nn.functional.cross_entropy(self.logits(x), y)) for x, y in self.holdouts]
        return sum(losses) / len(losses)

    def standard_normal(self, rows: int, cols: int) -> torch.Tensor:
        return torch.randn(rows, cols, generator=self.split_gen).to(self.W2.device, self.W2.dtype)

    def replay(self, steps: int) -> int:
        rc = self.ccfg.replay
        n = self.mem_size
        if not rc.enabled or n == 0 or steps <= 0:
            return 0
        for _ in range(steps):
            w = replay_weights(self.mem_y[:n], self.mem_q[:n], self.num_classes, rc.alpha)
            pick = torch.multinomial(w.float().cpu(), rc.batch_size, replacement=True, generator=self.gen)
            pick = pick.to(self.mem_x.device)
            x, y = self.mem_x[pick], self.mem_y[pick]
            r = self.infer(x, y)
            self._learn(x, r, self.ccfg.lr * rc.lr_scale, self.plasticity(chem_mod.usage(r.mu)))
            self.mem_q[pick] = self._sample_loss(x, y)
        return steps

    # ---- sleep -------------------------------------------------------------------------------
    @torch.no_grad()
    def sleep(self) -> dict[str, Any]:
        """One sleep (:func:`~circadian_vision.mechanisms.sleep.sleep_cycle`); returns and logs its event."""
        sync = _synchronizer(self.W1.device)
        sync()
        t0 = time.perf_counter()
        if self._wake_t0 is not None:
            self.wake_s += t0 - self._wake_t0
        event = sleep_cycle(self, self.ccfg)
        self.energies = []
        self.steps_since_sleep = 0
        if event["skipped"]:
            self.totals["skipped"] += 1
        else:
            tally_sleep(self.totals, splits=event["splits"], prunes=event["prunes"], rolled_back=event["rolled_back"])
        self.hidden_max = max(self.hidden_max, self.hidden_width)
        sync()
        seconds = time.perf_counter() - t0
        self.sleep_s += seconds
        if self._wake_t0 is not None:
            self._wake_t0 = time.perf_counter()
        event = {"step": self.steps, **event, "seconds": seconds}
        self.events.append(event)
        return event

    # ---- reporting ---------------------------------------------------------------------------
    def distinct_units(self) -> int:
        """Hidden units that differ (incoming rows with cosine > 0.999 count once)."""
        return distinct_units(self.W1)

    def stats(self) -> dict[str, float]:
        """Counters and widths (deterministic). Wall-clock times are in :meth:`timings`."""
        return {
            **{k: float(v) for k, v in self.totals.items()},
            "hidden_start": float(self.hidden_start),
            "hidden_end": float(self.hidden_width),
            "hidden_max": float(self.hidden_max),
            "distinct_end": float(self.distinct_units()),
        }

    def timings(self) -> dict[str, float]:
        return {"wake_s": self.wake_s, "sleep_s": self.sleep_s,
                "sleep_overhead": self.sleep_s / self.wake_s if self.wake_s > 0 else 0.0}
