"""One sleep of a circadian learner: the choreography the NumPy network and the torch head share.

``snapshot -> (gradual pruning: fade the marked units, remove the faded ones) -> budget -> split
high-chemical units (function-preserving, symmetry broken) -> prune low-chemical old units ->
prioritized class-balanced replay -> homeostatic norm control -> rollback guard on held-out
TRAINING data -> chemicals scaled down``.

The learner (the *host*: :class:`~circadian_vision.nets.circadian.CircadianNet` in NumPy,
:class:`~circadian_vision.heads.circadian.CircadianHead` in torch) exposes its adaptive hidden
layer as :class:`Units` and a few callbacks (:class:`SleepHost`); everything else here is the
array-agnostic mechanisms of this package, so both learners run the same sleep, line for line.
Layout as everywhere in :mod:`circadian_vision.mechanisms`: units are rows of ``W_in`` (H, D) and
``b_in`` and columns of ``W_out`` (C, H).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from circadian_vision.mechanisms import _xp
from circadian_vision.mechanisms._xp import Array
from circadian_vision.mechanisms.budget import sleep_budget
from circadian_vision.mechanisms.chemicals import chemical_level, steady_gain
from circadian_vision.mechanisms.homeostasis import norm_control
from circadian_vision.mechanisms.prune import (
    compensate_bias,
    fade_columns,
    prune_candidates,
    prune_units,
    remove_units,
)
from circadian_vision.mechanisms.rollback import sleep_verdict
from circadian_vision.mechanisms.split import split_candidates, split_units, split_vector

# the per-unit vectors every circadian learner keeps, and what a split child inherits of each
UNIT_VECTORS = ("chem_fast", "chem_slow", "age", "mean_act", "fade_count")


@dataclasses.dataclass
class Units:
    """The adaptive hidden layer: weights into and out of it, output bias, per-unit vectors."""

    W_in: Array
    b_in: Array
    W_out: Array
    b_out: Array
    vectors: dict[str, Array]

    @property
    def width(self) -> int:
        return int(self.W_in.shape[0])

    def chemical(self, cfg: Any) -> Array:
        return chemical_level(self.vectors["chem_fast"], self.vectors["chem_slow"], cfg.chemicals)


class SleepHost(Protocol):
    """What a learner provides to :func:`sleep_cycle`."""

    def get_units(self) -> Units: ...

    def set_units(self, units: Units) -> None: ...

    def state_snapshot(self) -> Any: ...  # everything a sleep may change (weights, unit vectors)

    def state_restore(self, snap: Any) -> None: ...

    def holdout_loss(self) -> float | None: ...  # loss on held-out TRAINING data (None: no guard)

    def replay(self, steps: int) -> int: ...  # replay steps done

    def standard_normal(self, rows: int, cols: int) -> Array: ...  # from the learner's own generator


def _split(u: Units, idx: list[int], cfg: Any, host: SleepHost) -> Units:
    sc = cfg.split
    eps = host.standard_normal(int(u.W_out.shape[0]), len(idx)) if sc.noise > 0 else None
    W_in, b_in, W_out = split_units(u.W_in, u.b_in, u.W_out, idx, sc.share, noise=sc.noise, eps=eps)
    v, k = u.vectors, sc.child_chemical
    vectors = {
        "chem_fast": split_vector(v["chem_fast"], idx, k, k),
        "chem_slow": split_vector(v["chem_slow"], idx, k, k),
        "age": split_vector(v["age"], idx, child_value=0.0),
        "mean_act": split_vector(v["mean_act"], idx),
        "fade_count": split_vector(v["fade_count"], idx, child_value=0.0),
    }
    return Units(W_in, b_in, W_out, u.b_out, vectors)


def drop_units(u: Units, idx: list[int], compensate: bool) -> Units:
    """``u`` without units ``idx`` (with ``compensate``, their mean output contribution moves into ``b_out``)."""
    if not idx:
        return u
    b_out = compensate_bias(u.b_out, u.W_out, idx, u.vectors["mean_act"]) if compensate else u.b_out
    W_in, b_in, W_out = prune_units(u.W_in, u.b_in, u.W_out, idx)
    return Units(W_in, b_in, W_out, b_out, {k: remove_units(v, idx) for k, v in u.vectors.items()})


def _fading(u: Units) -> list[int]:
    return [j for j, f in enumerate(_xp.to_list(u.vectors["fade_count"])) if f > 0]


def _gradual_step(u: Units, cfg: Any) -> tuple[Units, list[int]]:
    """Fade the marked units once more; remove those faded for ``fade_sleeps`` sleeps."""
    counts = _xp.to_list(u.vectors["fade_count"])
    marked = _fading(u)
    removed = [j for j in marked if counts[j] >= cfg.prune.fade_sleeps]
    still = [j for j in marked if j not in removed]
    u = dataclasses.replace(u, W_out=fade_columns(u.W_out, still, cfg.prune.fade),
                            vectors={**u.vectors, "fade_count": _xp.add_at(u.vectors["fade_count"], still, 1.0)})
    return drop_units(u, removed, compensate=False), removed


def _structure(u: Units, cfg: Any, host: SleepHost, progress: float | None) -> tuple[Units, dict[str, Any]]:
    """Gradual-prune step, budget, split and prune of one sleep (no replay, no guard)."""
    removed: list[int] = []
    if cfg.prune.enabled and cfg.prune.mode == "gradual":
        u, removed = _gradual_step(u, cfg)
    fading = _fading(u)
    budget = sleep_budget(u.chemical(cfg), u.width - len(fading), cfg.min_hidden, cfg.max_hidden, cfg.budget,
                          gain=steady_gain(cfg.chemicals), progress=progress)
    out: dict[str, Any] = {"budget": budget, "split": [], "prune": [], "faded_out": removed}
    if budget.skip:
        return u, out
    split_idx = split_candidates(u.chemical(cfg), budget.n_split, cfg.split.z, exclude=fading) if cfg.split.enabled else []
    width_before_split = u.width
    if split_idx:
        u = _split(u, split_idx, cfg, host)
    prune_idx: list[int] = []
    if cfg.prune.enabled:  # children and fading units are not candidates
        children = list(range(width_before_split, u.width))
        prune_idx = prune_candidates(u.chemical(cfg), u.vectors["age"], budget.n_prune, cfg.prune.min_age,
                                     cfg.prune.fraction, exclude=fading + children)
        if cfg.prune.mode == "immediate":
            u = drop_units(u, prune_idx, compensate=cfg.prune.compensate)
        elif prune_idx:
            u = dataclasses.replace(u, W_out=fade_columns(u.W_out, prune_idx, cfg.prune.fade),
                                    vectors={**u.vectors, "fade_count": _xp.set_at(u.vectors["fade_count"], prune_idx, 1.0)})
    out.update(split=split_idx, prune=prune_idx)
    return u, out


def sleep_cycle(host: SleepHost, cfg: Any, *, progress: float | None = None) -> dict[str, Any]:
    """One sleep of ``host`` under ``cfg`` (a :class:`~circadian_vision.nets.circadian.CircadianConfig`).

    Returns the sleep's event: widths, splits, prunes (committed only if not rolled back: the
    caller tallies), replay steps, budget scale, held-out losses before and after, the verdict.
    A sleep the progress windows skip changes nothing and returns ``{"skipped": True, ...}``.
    """
    before = host.state_snapshot()
    u = host.get_units()
    width_before = u.width
    loss_before = host.holdout_loss()
    u, s = _structure(u, cfg, host, progress)
    budget = s["budget"]
    if budget.skip:
        return {"skipped": True, "hidden_before": width_before, "hidden_after": width_before, "splits": 0,
                "prunes": 0, "marked": 0, "replay_steps": 0, "budget_scale": budget.scale,
                "holdout_loss_before": loss_before, "holdout_loss_after": loss_before, "rolled_back": False}
    host.set_units(u)
    replayed = host.replay(budget.replay_steps)
    if cfg.homeostasis.enabled:
        u = host.get_units()
        host.set_units(dataclasses.replace(u, W_in=norm_control(u.W_in, cfg.homeostasis.norm_max, cfg.homeostasis.rate)))
    loss_after = host.holdout_loss()
    rolled_back = sleep_verdict(cfg.rollback, loss_before, loss_after)
    if rolled_back:
        host.state_restore(before)
    u = host.get_units()
    scale = cfg.sleep_chemical_scale
    host.set_units(dataclasses.replace(u, vectors={**u.vectors, "chem_fast": scale * u.vectors["chem_fast"],
                                                   "chem_slow": scale * u.vectors["chem_slow"]}))
    immediate = cfg.prune.mode == "immediate"
    return {
        "skipped": False,
        "hidden_before": width_before,
        "hidden_after": host.get_units().width,
        "splits": len(s["split"]),
        "prunes": len(s["faded_out"]) + (len(s["prune"]) if immediate else 0),
        "marked": 0 if immediate else len(s["prune"]),
        "replay_steps": replayed,
        "budget_scale": budget.scale,
        "holdout_loss_before": loss_before,
        "holdout_loss_after": loss_after,
        "rolled_back": rolled_back,
    }
