"""The circadian mechanisms: one module each, plain functions over arrays, NumPy or torch.

Shared by the NumPy circadian network (:mod:`circadian_vision.nets.circadian`) and the torch
CircadianHead. Every function takes ``numpy.ndarray`` or ``torch.Tensor`` inputs (never mixed),
returns new arrays of the same kind (inputs are never modified) and imports nothing of torch
itself. Layout convention: hidden units are ROWS of ``W_in`` (H, D) and ``b_in`` (H,) and COLUMNS
of ``W_out`` (C, H); per-unit state (chemicals, ages) are length-H vectors. Each mechanism has a
frozen config dataclass whose fields are the knobs of params.yaml.

API (module: functions -> returns)

``chemicals``  ``ChemicalConfig(mode=plain|saturating|dual, decay, rate, saturation, fast_decay,
               fast_rate, slow_decay, slow_rate, slow_weight)``; ``steady_gain(cfg)`` (c = g u at rest);
               ``usage(h) -> (H,)`` mean |h| over the batch;
               ``accumulate_plain(c, u, decay, rate)``, ``accumulate_saturating(c, u, decay, rate,
               saturation)``, ``accumulate_dual(fast, slow, u, fast_decay, slow_decay, fast_rate,
               slow_rate) -> (fast, slow)``, ``combine(fast, slow, slow_weight)``;
               ``update_chemicals(fast, slow, u, cfg) -> (fast, slow)``,
               ``chemical_level(fast, slow, cfg) -> c``.
``gating``     ``GatingConfig(enabled, sensitivity, p_min, adaptive, importance_gain, age_gain,
               age_scale, gate_output)``; ``gate(c, s, p_min) = clip(exp(-s c), p_min, 1)``;
               ``importance(W_out, activity)``; ``adaptive_sensitivity(base, importance, age,
               importance_gain, age_gain, age_scale)``; ``sensitivity_for(cfg, W_out, activity, age)``;
               ``gate_rows(grad, p)`` (W_in / b_in updates), ``gate_columns(grad, p)`` (W_out).
``reward``     ``RewardConfig(enabled, decay, gain, scale_min, scale_max)``;
               ``ema_update(ema, value, decay) -> float``;
               ``lr_scale(error, error_ema, gain, lo, hi) -> float``; ``RewardModulator(cfg).step(error)``.
``trigger``    ``TriggerConfig(kind=adaptive|fixed, every, min_spacing, window, plateau_tol,
               spread_min, spread_gate)``; ``energy_plateau(energies, window, tol) -> bool``;
               ``chemical_spread(c, gain) = Var(c / gain)``; ``trigger_conditions(...) -> {spacing,
               plateau, spread}``; ``should_sleep(energies, c, steps_since, cfg, gain) -> bool``.
``budget``     ``BudgetConfig(split, prune, replay_steps, adaptive, spread_ref, scale_min,
               scale_max, split_until, prune_from)``; ``sleep_budget(c, width, min_width, max_width,
               cfg, gain=, progress=) -> SleepBudget(n_split, n_prune, replay_steps, scale, skip)``.
``split``      ``SplitConfig(enabled, z, share, child_chemical, noise)``; ``split_candidates(c, k, z,
               exclude=()) -> list[int]``; ``split_units(W_in, b_in, W_out, idx, share=0.5, noise=,
               eps=) -> (W_in, b_in, W_out)`` (children appended, symmetry broken by ``noise``);
               ``split_vector(v, idx, parent_scale, child_scale, child_value)`` for per-unit state;
               ``distinct_units(W_in)`` (units whose incoming rows differ, cosine <= 0.999).
``prune``      ``PruneConfig(enabled, mode=immediate|gradual, fraction, min_age, compensate, fade,
               fade_sleeps)``; ``prune_candidates(c, age, k, min_age, fraction, exclude=())``;
               ``prune_units(W_in, b_in, W_out, idx)``; ``remove_units(x, idx, axis)``;
               ``compensate_bias(b_out, W_out, idx, mean_activity)``; ``fade_columns(W_out, idx,
               factor)``.
``homeostasis`` ``HomeostasisConfig(enabled, norm_max, rate)``; ``row_norms(W)``;
               ``norm_control(W, norm_max, rate=1)``.
``replay``     ``ReplayConfig(enabled, capacity, batch_size, alpha, lr_scale)``;
               ``replay_weights(labels, priority, num_classes, alpha=1) -> probabilities``;
               ``ReplayBuffer`` (NumPy ring buffer: add / sample / update).
``rollback``   ``RollbackConfig(enabled, tolerance)``; ``snapshot(state) -> dict``,
               ``restore(snap) -> dict`` (bit-identical copies); ``should_rollback(before, after,
               tolerance) -> bool``.
``sleep``      ``Units``, ``SleepHost``, ``sleep_cycle(host, cfg, progress=)``: one sleep, the whole
               choreography, shared by the NumPy network and the torch head.
``_xp``        the array-kind dispatch (``is_torch``, ``exp``, ``clip``, ``concat``, ``copy`` ...).
"""

from __future__ import annotations

from circadian_vision.mechanisms import (
    budget,
    chemicals,
    gating,
    homeostasis,
    prune,
    replay,
    reward,
    rollback,
    sleep,
    split,
    trigger,
)
from circadian_vision.mechanisms.budget import BudgetConfig, SleepBudget, sleep_budget
from circadian_vision.mechanisms.chemicals import (
    ChemicalConfig,
    chemical_level,
    steady_gain,
    update_chemicals,
    usage,
)
from circadian_vision.mechanisms.gating import GatingConfig, adaptive_sensitivity, gate, importance
from circadian_vision.mechanisms.homeostasis import HomeostasisConfig, norm_control
from circadian_vision.mechanisms.prune import (
    PruneConfig,
    compensate_bias,
    fade_columns,
    prune_candidates,
    prune_units,
)
from circadian_vision.mechanisms.replay import ReplayBuffer, ReplayConfig, replay_weights
from circadian_vision.mechanisms.reward import RewardConfig, RewardModulator, ema_update, lr_scale
from circadian_vision.mechanisms.rollback import RollbackConfig, restore, should_rollback, snapshot
from circadian_vision.mechanisms.sleep import SleepHost, Units, sleep_cycle
from circadian_vision.mechanisms.split import (
    SplitConfig,
    distinct_units,
    split_candidates,
    split_units,
    split_vector,
)
from circadian_vision.mechanisms.trigger import (
    TriggerConfig,
    chemical_spread,
    should_sleep,
    trigger_conditions,
)

__all__ = [
    "BudgetConfig",
    "ChemicalConfig",
    "GatingConfig",
    "HomeostasisConfig",
    "PruneConfig",
    "ReplayBuffer",
    "ReplayConfig",
    "RewardConfig",
    "RewardModulator",
    "RollbackConfig",
    "SleepBudget",
    "SleepHost",
    "SplitConfig",
    "TriggerConfig",
    "Units",
    "adaptive_sensitivity",
    "budget",
    "chemical_level",
    "chemical_spread",
    "chemicals",
    "compensate_bias",
    "distinct_units",
    "ema_update",
    "fade_columns",
    "gate",
    "gating",
    "homeostasis",
    "importance",
    "lr_scale",
    "norm_control",
    "prune",
    "prune_candidates",
    "prune_units",
    "replay",
    "replay_weights",
    "restore",
    "reward",
    "rollback",
    "should_rollback",
    "should_sleep",
    "sleep",
    "sleep_cycle",
    "sleep_budget",
    "snapshot",
    "steady_gain",
    "split",
    "split_candidates",
    "split_units",
    "split_vector",
    "trigger",
    "trigger_conditions",
    "update_chemicals",
    "usage",
]
