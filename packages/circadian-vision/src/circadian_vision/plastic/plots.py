"""Plots of a :class:`~circadian_vision.plastic.trainer.TrainingHistory` (matplotlib + seaborn).

``plot_history`` draws the phase plot of one run: held-out accuracy of every eval set over training
steps with the phases shaded (top), the prequential accuracy measured before each update (middle)
and, when the learner reports them, context energy and memory fill (bottom).
``plot_phases`` draws the same accuracy panel for several runs side by side (e.g. one per model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from circadian_vision.plastic.trainer import TrainingHistory

PHASE_COLOURS = ("#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974", "#64b5cd")


def _as_dict(history: TrainingHistory | Mapping[str, Any]) -> dict[str, Any]:
    return history.to_dict() if isinstance(history, TrainingHistory) else dict(history)


def shade_phases(ax: Any, phases: Sequence[Mapping[str, Any]], *, label: bool = True) -> None:
    """Shade each phase's step range and write its name at the top."""
    for i, p in enumerate(phases):
        ax.axvspan(p["start_step"], p["end_step"], color=PHASE_COLOURS[i % len(PHASE_COLOURS)], alpha=0.08, lw=0)
        if label:
            ax.text(
                (p["start_step"] + p["end_step"]) / 2, 1.02, p["name"], transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=8,
            )


def accuracy_panel(ax: Any, history: TrainingHistory | Mapping[str, Any], *, sets: Sequence[str] | None = None, legend: bool = True) -> None:
    """Held-out accuracy of each eval set against the training step."""
    import seaborn as sns

    h = _as_dict(history)
    rows = [e for e in h["evals"] if sets is None or e["set"] in sets]
    if rows:
        import pandas as pd

        frame = pd.DataFrame(rows)
        sns.lineplot(data=frame, x="step", y="accuracy", hue="set", ax=ax, marker="o", markersize=3, legend=legend)
    shade_phases(ax, h["phases"])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out accuracy")


def plot_history(history: TrainingHistory | Mapping[str, Any], *, window: int = 10, title: str | None = None):
    """The phase plot of one run; returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    h = _as_dict(history)
    steps = h["steps"]
    extra = [k for k in ("context_energy", "memory_fill") if k in steps and any(v is not None for v in steps[k])]
    n = 2 + (1 if extra else 0)
    fig, axes = plt.subplots(n, 1, figsize=(7, 2.2 * n), sharex=True)
    accuracy_panel(axes[0], h)
    acc = np.asarray(steps.get("acc_before", []), dtype=float)
    if len(acc):
        w = max(1, min(window, len(acc)))
        smooth = np.convolve(acc, np.ones(w) / w, mode="full")[: len(acc)] / (np.minimum(np.arange(1, len(acc) + 1), w) / w)
        axes[1].plot(steps["step"], smooth, lw=1.2, color="k")
    shade_phases(axes[1], h["phases"], label=False)
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].set_ylabel(f"accuracy before update\n(trailing mean, {window} steps)")
    if extra:
        ax = axes[2]
        for key in extra:
            vals = np.array([np.nan if v is None else v for v in steps[key]], dtype=float)
            ax.plot(steps["step"], vals, lw=1.2, label=key.replace("_", " "))
        shade_phases(ax, h["phases"], label=False)
        ax.legend(fontsize=7, loc="upper left")
    axes[-1].set_xlabel("training step")
    if title:
        fig.suptitle(title, y=1.02)
    fig.tight_layout()
    return fig


def plot_phases(histories: Mapping[str, TrainingHistory | Mapping[str, Any]], *, sets: Sequence[str] | None = None):
    """One accuracy panel per run (``{label: history}``), sharing the y axis; returns the figure."""
    import matplotlib.pyplot as plt

    n = len(histories)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 2.8), sharey=True, squeeze=False)
    for i, (ax, (label, hist)) in enumerate(zip(axes[0], histories.items())):
        accuracy_panel(ax, hist, sets=sets, legend=i == n - 1)
        ax.set_title(label, fontsize=9, pad=14)
    if n and axes[0][-1].get_legend() is not None:
        axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig
