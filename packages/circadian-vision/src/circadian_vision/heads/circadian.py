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
batch energy), replay memory, and the sleep trigger (adaptive or fixed).

Sleep, in the NumPy network's order: snapshot -> (gradual pruning: fade, remove) -> budget ->
split high-chemical units (function-preserving) -> prune low-chemical old units -> prioritized
class-balanced replay -> homeostatic norm control -> rollback guard on a held-out slice of the
TRAINING data -> chemicals partly reset. The width stays within ``[min_hidden, max_hidden]``.
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
from circadian_vision.mechanisms.budget import sleep_budget
from circadian_vision.mechanisms.homeostasis import norm_control
from circadian_vision.mechanisms.prune import (
    compensate_bias,
    fade_columns,
    prune_candidates,
    prune_units,
    remove_units,
)
from circadian_vision.mechanisms.replay import replay_weights
from circadian_vision.mechanisms.reward import RewardModulator
from circadian_vision.mechanisms.rollback import restore, sleep_verdict, snapshot, tally_sleep
from circadian_vision.mechanisms.split import split_candidates, split_units, split_vector
from circadian_vision.mechanisms.trigger import should_sleep
from circadian_vision.nets.circadian import CircadianConfig  # one config for the NumPy and torch networks

# everything sized by the hidden width besides W1/b1/W2: per-unit vectors
_UNIT_VECTORS = ("chem_fast", "chem_slow", "age", "mean_act", "fade_count")


class CircadianHead(PredictiveCodingHead):
    name = "circadian"

    def __init__(self, in_dim: int, num_classes: int, config: CircadianConfig | None = None, *, seed: int = 0) -> None:
        cfg = config or CircadianConfig()
        pc = PredictiveCodingConfig(hidden=cfg.hidden, lr=cfg.lr, inference_steps=cfg.inference_steps,
                                    inference_lr=cfg.inference_lr, init_scale=cfg.init_scale)
        super().__init__(in_dim, num_classes, pc, seed=seed)
        self.ccfg = cfg
        self.gen = torch.Generator().manual_seed(seed + 7919)  # replay sampling
        for name in _UNIT_VECTORS:
            self.register_buffer(name, torch.zeros(cfg.hidden))
        cap = cfg.replay.capacity if cfg.replay.enabled else 1
        self.register_buffer("mem_x", torch.zeros(cap, in_dim))
        self.register_buffer("mem_y", torch.zeros(cap, dtype=torch.long))
        self.register_buffer("mem_q", torch.zeros(cap))
        self.mem_next = 0
        self.mem_size = 0
        self.reward = RewardModulator(cfg.reward)
        self.energies: list[float] = []
        self.steps = 0
        self.steps_since_sleep = 0
        self.holdout: tuple[torch.Tensor, torch.Tensor] | None = None
        self.totals = {"sleeps": 0, "splits": 0, "prunes": 0, "rollbacks": 0, "split_attempts": 0,
                       "prune_attempts": 0}
        self.hidden_start = cfg.hidden
        self.hidden_max = cfg.hidden
        self.wake_s = 0.0
        self.sleep_s = 0.0
        self._wake_t0: float | None = None

    # ---- state -------------------------------------------------------------------------------
    def set_holdout(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The held-out slice of TRAINING data the rollback guard decides on (never the test set)."""
        self.holdout = (x, y) if len(y) else None

    @property
    def chemical(self) -> torch.Tensor:
        return chem_mod.chemical_level(self.chem_fast, self.chem_slow, self.ccfg.chemicals)

    def unit_state(self) -> dict[str, torch.Tensor]:
        """Everything a sleep changes: weights and per-unit vectors."""
        return {k: getattr(self, k) for k in ("W1", "b1", "W2", "b2", *_UNIT_VECTORS)}

    def load_unit_state(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            if name in ("W1", "b1", "W2", "b2"):
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
        if cfg.replay.enabled:
            self._remember(x, y, self._sample_loss(x, y))
        self.energies.append(energy)
        self.steps += 1
        self.steps_since_sleep += 1
        if should_sleep(self.energies, self.chemical, self.steps_since_sleep, cfg.trigger):
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

    # ---- sleep -------------------------------------------------------------------------------
    def _set_units(self, W1: torch.Tensor, b1: torch.Tensor, W2: torch.Tensor, vectors: dict[str, torch.Tensor]) -> None:
        self.load_unit_state({"W1": W1, "b1": b1, "W2": W2, **vectors})

    def _remove(self, idx: list[int], compensate: bool) -> None:
        if not idx:
            return
        if compensate:
            self.b2 = nn.Parameter(compensate_bias(self.b2, self.W2, idx, self.mean_act), requires_grad=False)
        W1, b1, W2 = prune_units(self.W1, self.b1, self.W2, idx)
        self._set_units(W1, b1, W2, {k: remove_units(getattr(self, k), idx) for k in _UNIT_VECTORS})

    def holdout_loss(self) -> float | None:
        if self.holdout is None:
            return None
        x, y = self.holdout
        return float(nn.functional.cross_entropy(self.logits(x), y))

    def _replay(self, steps: int) -> int:
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

    @torch.no_grad()
    def sleep(self) -> dict[str, Any]:
        """One sleep; returns (and logs) its event."""
        cfg = self.ccfg
        sync = _synchronizer(self.W1.device)
        sync()
        t0 = time.perf_counter()
        if self._wake_t0 is not None:
            self.wake_s += t0 - self._wake_t0
        before_state = snapshot(self.unit_state())
        loss_before = self.holdout_loss()
        width_before = self.hidden_width
        chem = self.chemical

        # gradual pruning: fade the marked units further, remove those that have faded long enough
        removed_faded: list[int] = []
        if cfg.prune.enabled and cfg.prune.mode == "gradual":
            marked = [int(j) for j in torch.nonzero(self.fade_count > 0).flatten().tolist()]
            counts = self.fade_count.tolist()
            removed_faded = [j for j in marked if counts[j] >= cfg.prune.fade_sleeps]
            still = [j for j in marked if j not in removed_faded]
            self.W2 = nn.Parameter(fade_columns(self.W2, still, cfg.prune.fade), requires_grad=False)
            if still:
                self.fade_count[still] += 1
            self._remove(removed_faded, compensate=False)
            chem = self.chemical
        fading = [int(j) for j in torch.nonzero(self.fade_count > 0).flatten().tolist()]

        budget = sleep_budget(chem, self.hidden_width - len(fading), cfg.min_hidden, cfg.max_hidden, cfg.budget)
        split_idx = split_candidates(chem, budget.n_split, cfg.split.z, exclude=fading) if cfg.split.enabled else []
        if split_idx:
            W1, b1, W2 = split_units(self.W1, self.b1, self.W2, split_idx, cfg.split.share)
            k = cfg.split.child_chemical
            self._set_units(W1, b1, W2, {
                "chem_fast": split_vector(self.chem_fast, split_idx, k, k),
                "chem_slow": split_vector(self.chem_slow, split_idx, k, k),
                "age": split_vector(self.age, split_idx, child_value=0.0),
                "mean_act": split_vector(self.mean_act, split_idx),
                "fade_count": split_vector(self.fade_count, split_idx, child_value=0.0),
            })
        prune_idx: list[int] = []
        if cfg.prune.enabled:  # children and fading units are not candidates
            children = list(range(width_before, self.hidden_width))
            prune_idx = prune_candidates(self.chemical, self.age, budget.n_prune, cfg.prune.min_age,
                                         cfg.prune.fraction, exclude=fading + children)
            if cfg.prune.mode == "immediate":
                self._remove(prune_idx, compensate=cfg.prune.compensate)
            elif prune_idx:
                self.W2 = nn.Parameter(fade_columns(self.W2, prune_idx, cfg.prune.fade), requires_grad=False)
                self.fade_count[prune_idx] = 1.0
        replayed = self._replay(budget.replay_steps)
        if cfg.homeostasis.enabled:
            self.W1 = nn.Parameter(norm_control(self.W1, cfg.homeostasis.norm_max, cfg.homeostasis.rate),
                                   requires_grad=False)
        loss_after = self.holdout_loss()

        rolled_back = sleep_verdict(cfg.rollback, loss_before, loss_after)
        n_pruned = len(removed_faded) + (len(prune_idx) if cfg.prune.mode == "immediate" else 0)
        if rolled_back:
            self.load_unit_state(restore(before_state))
        self.chem_fast = cfg.sleep_chemical_scale * self.chem_fast
        self.chem_slow = cfg.sleep_chemical_scale * self.chem_slow
        self.energies = []
        self.steps_since_sleep = 0

        tally_sleep(self.totals, splits=len(split_idx), prunes=n_pruned, rolled_back=rolled_back)
        self.hidden_max = max(self.hidden_max, self.hidden_width)
        sync()
        seconds = time.perf_counter() - t0
        self.sleep_s += seconds
        if self._wake_t0 is not None:
            self._wake_t0 = time.perf_counter()
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

    # ---- reporting ---------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        return {
            **{k: float(v) for k, v in self.totals.items()},
            "hidden_start": float(self.hidden_start),
            "hidden_end": float(self.hidden_width),
            "hidden_max": float(self.hidden_max),
            "wake_s": self.wake_s,
            "sleep_s": self.sleep_s,
            "sleep_overhead": self.sleep_s / self.wake_s if self.wake_s > 0 else 0.0,
        }
