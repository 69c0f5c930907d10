"""Plastic brain family (issue 4): the three-phase curriculum, four learners, beside the prototype's claims.

Tables: phase-1 accuracy through the curriculum and its retention after phase 2 (the headline: the
storm re-teaches the phase-1 classes, so retention after it is reported separately), the same read
through the triarchic brain's core alone (as the prototype reports its "Memory (Core)"), with the
episodic memory's capacity set against the stream; the storm (held-out score, the prototype's
trained-on score, context energy, core drift, sparsity); adaptation speed; every paired comparison
the text states. Records are read through the study's contract. Figures: the phase plot and the
dynamics (the tables' t-interval).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from circadian_core.stats import paired_difference, t_errorbar
from circadian_vision.studies.plastic import CONTRACT
from pipelines.reports import ReportContext, latex_escape, latex_table
from pipelines.reports.cpc import paired_cells, paired_table

STUDIES = ("plastic",)
ORDER = 30
STUDY = "plastic"

MODELS = (
    ("plastic-brain", "Plastic brain"),
    ("memory-only", "Memory only (no blocks)"),
    ("triarchic", "Triarchic brain"),
    ("naive-linear", "Naive linear head"),
)
PHASES = ("phase1", "phase2", "storm")
DATASETS = {"digits": "scikit-learn digits", "cifar10": "CIFAR-10"}
# (a, b, metric): every comparison the text states, paired over seeds
PAIRS = (
    ("plastic-brain", "memory-only", "retention.after_phase2"),
    ("plastic-brain", "memory-only", "cl.acc"),
    ("plastic-brain", "memory-only", "acc.storm.after_storm"),
    ("plastic-brain", "naive-linear", "retention.after_phase2"),
    ("triarchic", "naive-linear", "retention.after_phase2"),
    ("plastic-brain", "naive-linear", "cl.acc"),
)
METRIC_WORDS = {"retention.after_phase2": "retention after phase 2", "cl.acc": "ACC",
                "acc.storm.after_storm": "storm, held-out"}


def _present(ctx: ReportContext) -> list[tuple[str, str]]:
    return [(v, label) for v, label in MODELS if ctx.records_for(STUDY, v)]


def _cell(ctx: ReportContext, variant: str, metric: str, name: str, fmt: str = ".3f") -> str:
    """mean +- CI macros of one metric, or an en dash where the model has no such quantity."""
    if np.isnan(ctx.val(STUDY, variant, metric)):
        return "--"
    return ctx.mean_pm(("plastic", variant, name), STUDY, variant, metric, fmt)


def _mean(ctx: ReportContext, variant: str, metric: str, name: str, fmt: str = ".3f") -> str:
    src = f"{ctx.profile}:{STUDY}/{variant}/{metric} mean"
    return ctx.macro(("plastic", variant, name), ctx.val(STUDY, variant, metric), fmt, source=src)


def _setting(ctx: ReportContext) -> dict[str, Any]:
    recs = ctx.parsed(CONTRACT, STUDY)
    rec = recs[0]
    cfg = rec.settings
    by_variant = {r.variant: r for r in recs}
    plastic = by_variant.get("plastic-brain", rec).settings.plastic
    tri = by_variant.get("triarchic", rec).settings.triarchic
    eyes = rec.info.eyes
    dataset = cfg.data.dataset["name"]
    return {
        "dataset": DATASETS.get(dataset, dataset),
        "eyes": {"digits_cnn": "a small CNN trained on the first Split-Digits task", "resnet18": "ResNet-18",
                 "random_projection": "a random projection"}.get(eyes.get("name"), eyes.get("name", "?")),
        "groups": [latex_escape(g) for g in cfg.data.group_names],
        "steps": cfg.curriculum.steps,
        "batch": cfg.curriculum.batch_size,
        "seeds": len({r.seed for r in recs}),
        "device": rec.raw["device"].split(":")[0],
        "layers": plastic.num_layers,
        "hidden": plastic.block.hidden_dim,
        "k": plastic.block.k,
        "memory": plastic.memory_size,
        "stream": rec.info.stream,
        "wrong_reward": plastic.wrong_reward,
        "tri_hidden": tri.hidden_dim,
        "tri_k": tri.k,
        "core_lr": tri.core_lr,
        "context_lr": tri.context_lr,
        "n_storm_test": rec.info.curriculum["eval"]["storm"]["n"],
        "n_storm_train": rec.info.curriculum["train"]["storm"]["n"],
        "storm_classes": cfg.data.storm_classes,
        # the prototype's own setting: CIFAR-10 on frozen ImageNet ResNet-18 eyes (its published claims)
        "proto": dataset == "cifar10" and eyes.get("name") == "resnet18" and "random" not in str(eyes.get("weights")),
    }


def _setting_macros(ctx: ReportContext, s: dict[str, Any]) -> None:
    src = "plastic run records"
    ctx.macro(("plastic", "dataset"), s["dataset"], source=f"{src}: data.dataset")
    ctx.macro(("plastic", "eyes"), s["eyes"], source=f"{src}: eyes identity")
    ctx.macro(("plastic", "group", "one"), s["groups"][0], source=f"{src}: data.group_names[0]")
    ctx.macro(("plastic", "group", "two"), s["groups"][1], source=f"{src}: data.group_names[1]")
    for phase, steps in zip(PHASES, s["steps"]):
        ctx.macro(("plastic", "steps", phase), steps, "d", source=f"{src}: curriculum.steps")
    ctx.macro(("plastic", "batch"), s["batch"], "d", source=f"{src}: curriculum.batch_size")
    ctx.macro(("plastic", "seeds"), s["seeds"], "d", source=f"{src}: number of seeds")
    ctx.macro(("plastic", "device"), s["device"], source=f"{src}: device")
    ctx.macro(("plastic", "layers"), s["layers"], "d", source="plastic-brain config plastic.num_layers")
    ctx.macro(("plastic", "hidden"), s["hidden"], ",d", source="plastic-brain config plastic.block.hidden_dim")
    ctx.macro(("plastic", "k"), s["k"], "d", source="plastic-brain config plastic.block.k")
    ctx.macro(("plastic", "memory"), s["memory"], ",d", source="plastic-brain config plastic.memory_size")
    ctx.macro(("plastic", "stream"), s["stream"], ",d", source=f"{src}: info.stream (steps x batch size)")
    ctx.macro(("plastic", "memory", "pct"), 100 * s["memory"] / s["stream"], ".1f",
              source="plastic.memory_size / info.stream x 100")
    ctx.macro(("plastic", "wrong", "reward"), s["wrong_reward"], ".1f", source="plastic-brain config plastic.wrong_reward")
    ctx.macro(("plastic", "tri", "hidden"), s["tri_hidden"], ",d", source="triarchic config triarchic.hidden_dim")
    ctx.macro(("plastic", "tri", "k"), s["tri_k"], "d", source="triarchic config triarchic.k")
    ctx.macro(("plastic", "tri", "core", "lr"), s["core_lr"], ".2f", source="triarchic config triarchic.core_lr")
    ctx.macro(("plastic", "tri", "context", "lr"), s["context_lr"], ".1f", source="triarchic config triarchic.context_lr")
    ctx.macro(("plastic", "storm", "test", "n"), s["n_storm_test"], "d", source=f"{src}: storm eval set size")
    ctx.macro(("plastic", "storm", "train", "n"), s["n_storm_train"], "d", source=f"{src}: storm training set size")


def tables(ctx: ReportContext) -> None:
    s = _setting(ctx)
    _setting_macros(ctx, s)
    pub = ctx.published("plastic")
    pub_src = "published.yaml plastic (prototype README, CIFAR-10)"
    pubm = {
        "ret": ctx.macro(("plastic", "published", "retention"), 100 * pub["retention"]["brain"], ".0f", source=pub_src),
        "naive": ctx.macro(("plastic", "published", "naive"), 100 * pub["retention"]["naive_below"], ".0f", source=pub_src),
        "active": ctx.macro(("plastic", "published", "active"), pub["active_fraction"], ".3f", source=pub_src),
        "adapt": ctx.macro(("plastic", "published", "adapt"), pub["adaptation_steps_phase2"], "d", source=pub_src),
        "spike": ctx.macro(("plastic", "published", "spike"), pub["context_spike"], ".1f", source=pub_src),
        "memory": ctx.macro(("plastic", "published", "memory"), pub["memory_size"], ",d", source=pub_src),
        "stream": ctx.macro(("plastic", "published", "stream"), pub["stream"], ",d", source=pub_src),
    }
    ctx.macro(("plastic", "protocol", "verdict"),
              "the setting of the prototype, so its published claims are set beside ours in the tables" if s["proto"]
              else "not the setting of the prototype (CIFAR-10 on ImageNet ResNet-18 eyes), so its published claims are "
              "not comparable with these numbers and the tables quote them only in the paper profile",
              source="plastic run records: dataset and eyes against the prototype's")
    models = _present(ctx)
    if not s["proto"]:
        pubm = {}  # no published rows beside numbers of another setting
    _retention_table(ctx, models, pubm)
    _storm_table(ctx, models, pubm)
    _adaptation_table(ctx, models, pubm)
    _paired(ctx, models)
    _quoted(ctx, models, pub)


def _retention_table(ctx: ReportContext, models: list[tuple[str, str]], pubm: dict[str, str]) -> None:
    rows, frame = [], []
    for variant, label in models:
        rows.append([
            label,
            _cell(ctx, variant, "acc.phase1.after_phase1", "p1 after p1"),
            _cell(ctx, variant, "acc.phase1.after_phase2", "p1 after p2"),
            _cell(ctx, variant, "retention.after_phase2", "retention p2 ci"),
            _cell(ctx, variant, "retention_core.after_phase2", "retention core p2"),
            _cell(ctx, variant, "acc.phase2.after_phase2", "p2 after p2 ci"),
            _cell(ctx, variant, "cl.acc", "cl acc"),
        ])
        frame.append({"model": variant, **{m: ctx.val(STUDY, variant, m) for m in (
            "acc.phase1.after_phase1", "acc.phase1.after_phase2", "retention.after_phase2", "retention_core.after_phase2",
            "acc.phase1@core.after_phase2", "acc.phase2.after_phase2", "acc.phase1.after_storm", "retention.after_storm",
            "cl.acc", "cl.bwt", "cl.forgetting")}})
    if pubm:
        rows.append([r"\emph{Prototype, published}", "--", "--", f"$\\approx${pubm['ret']}\\%", "--", "--", "--"])
        rows.append([r"\emph{Naive, published}", "--", "--", f"$<${pubm['naive']}\\%", "--", "--", "--"])
    ctx.write_csv("plastic_retention", pd.DataFrame(frame))
    ctx.write_table("plastic_retention", latex_table(
        ["Model", "after phase 1", "after phase 2", "retention", "core only", "phase 2", "ACC"], rows,
        caption=(
            "Accuracy on the held-out test images of the first class group (\\plasticGroupOne) after phase 1 and "
            "after phase 2, its retention (after phase 2 divided by after phase 1; the triarchic brain's core "
            "pathway alone in the next column, the prototype's ``Memory (Core)''), the accuracy on the second group "
            "(\\plasticGroupTwo) after phase 2, and ACC, the mean of the final accuracies on the three eval sets. "
            "Mean $\\pm$ 95\\% t-interval over \\plasticSeeds{} seeds; the episodic memory holds \\plasticMemory{} "
            "of the \\plasticStream{} samples of the stream (\\plasticMemoryPct\\%, the prototype's "
            "\\plasticPublishedMemory{} of \\plasticPublishedStream)."
            + (" The published rows are the prototype's CIFAR-10 claims, which do not say whether retention is an "
               "accuracy or a ratio." if pubm else "")),
        label="tab:plastic-retention", size=r"\footnotesize\setlength{\tabcolsep}{2.5pt}"))


def _storm_table(ctx: ReportContext, models: list[tuple[str, str]], pubm: dict[str, str]) -> None:
    rows, frame = [], []
    for variant, label in models:
        rows.append([
            label,
            _cell(ctx, variant, "acc.storm.after_storm", "storm test"),
            _cell(ctx, variant, "acc.storm_train.after_storm", "storm train"),
            _cell(ctx, variant, "acc.phase1.after_storm", "p1 after storm"),
            _cell(ctx, variant, "sparsity", "active", ".4f"),
            _cell(ctx, variant, "context_energy.spike", "spike", ".2f"),
            _cell(ctx, variant, "core_drift.storm", "drift storm"),
        ])
        frame.append({"model": variant, **{m: ctx.val(STUDY, variant, m) for m in (
            "acc.storm.after_storm", "acc.storm_train.after_storm", "storm_gap", "acc.phase1.after_storm",
            "retention.after_storm", "sparsity", "context_energy.storm", "context_energy.spike", "core_drift.phase2",
            "core_drift.storm", "births.storm")}})
    if pubm:
        rows.append([r"\emph{Prototype, published}", "--", "--", "--", pubm["active"], f"{pubm['spike']}$\\times$",
                     "none"])
    ctx.write_csv("plastic_storm", pd.DataFrame(frame))
    ctx.write_table("plastic_storm", latex_table(
        ["Model", "held-out", "trained-on", "group 1", "active", "ctx.\\ spike", "core drift"], rows,
        caption=(
            "The storm (colour-inverted images of every class), after the storm phase. \\emph{Held-out}: accuracy on "
            "\\plasticStormTestN{} inverted test images, our score. \\emph{Trained-on}: accuracy on the "
            "\\plasticStormTrainN{} inverted training images the storm had just trained on, the prototype's way of "
            "scoring. \\emph{Group 1}: clean test images of the first group after the storm; the storm re-teaches "
            "those classes (inverted), so this is not retention. Active: fraction of hidden units active per input "
            "(1 for the dense linear head). Context spike: mean context energy during the storm over its mean in "
            "the two phases before. Core drift: $\\lVert W_{\\text{end}}-W_{\\text{start}}\\rVert/\\lVert "
            "W_{\\text{start}}\\rVert$ over the storm of the core weights (triarchic), the mature encoder rows "
            "(plastic brain) or the weights (linear head). Mean $\\pm$ 95\\% t-interval."),
        label="tab:plastic-storm", size=r"\footnotesize\setlength{\tabcolsep}{2.5pt}"))


def _adaptation_table(ctx: ReportContext, models: list[tuple[str, str]], pubm: dict[str, str]) -> None:
    rows, frame = [], []
    for variant, label in models:
        rows.append([label, *(_cell(ctx, variant, f"adapt_steps.{p}", f"adapt {p}", ".1f") for p in PHASES)])
        frame.append({"model": variant, **{p: ctx.val(STUDY, variant, f"adapt_steps.{p}") for p in PHASES}})
    if pubm:
        rows.append([r"\emph{Prototype, published}", "--", f"$\\le${pubm['adapt']}", "--"])
    ctx.write_csv("plastic_adaptation", pd.DataFrame(frame))
    ctx.write_table("plastic_adaptation", latex_table(
        ["Model", "phase 1", "phase 2", "storm"], rows,
        caption=("Adaptation speed: training steps into each phase until the accuracy measured before each update "
                 "(trailing mean over 10 steps) reaches 80\\% of its level over the phase's last 10 steps (phases of "
                 "\\plasticStepsPhaseOne, \\plasticStepsPhaseTwo{} and \\plasticStepsStorm{} steps). Mean $\\pm$ "
                 "95\\% t-interval."),
        label="tab:plastic-adaptation", size=r"\footnotesize"))


def _paired(ctx: ReportContext, models: list[tuple[str, str]]) -> None:
    names = dict(models)
    rows = []
    for a, b, metric in PAIRS:
        if a in names and b in names:
            d = ctx.paired(STUDY, a, b, metric)
            if d.n == 0:
                continue
            prefix = ("plastic", a, "minus", b, METRIC_WORDS[metric])
            rows.append([f"{names[a]} $-$ {names[b]}", METRIC_WORDS[metric],
                         *paired_cells(ctx, prefix, d, f"{ctx.profile}:plastic {a} - {b} {metric}")])
    if "triarchic" in names:  # the core pathway alone against core + context, within each run
        d = paired_difference(ctx.by_seed(STUDY, "triarchic", "acc.phase1@core.after_phase2"),
                              ctx.by_seed(STUDY, "triarchic", "acc.phase1.after_phase2"))
        rows.append(["Triarchic: core alone $-$ core + context", "group 1 after phase 2",
                     *paired_cells(ctx, ("plastic", "triarchic", "core", "minus", "both"), d,
                                   f"{ctx.profile}:plastic triarchic acc.phase1@core - acc.phase1 after phase 2")])
    paired_table(ctx, "plastic_paired", rows, caption="Plastic brain family: every comparison the text states.",
                 label="tab:plastic-paired", first=("Comparison", "Metric"))


def _quoted(ctx: ReportContext, models: list[tuple[str, str]], pub: dict[str, Any]) -> None:
    """The numbers the text quotes beyond the tables (means; their CIs are in the tables)."""
    variants = {v for v, _ in models}
    for variant in variants & {"plastic-brain", "triarchic", "naive-linear"}:
        _mean(ctx, variant, "retention.after_phase2", "retention p2")
    for variant in variants & {"plastic-brain", "triarchic"}:
        _mean(ctx, variant, "acc.phase2.after_phase2", "p2 after p2")
        _mean(ctx, variant, "retention.after_storm", "retention storm")
    if "triarchic" in variants:
        _mean(ctx, "triarchic", "acc.phase1@core.after_phase1", "p1 core after p1")
        _mean(ctx, "triarchic", "acc.phase1@core.after_phase2", "p1 core after p2")
        _mean(ctx, "triarchic", "acc.phase1@core.after_storm", "p1 core after storm")
        _mean(ctx, "triarchic", "acc.phase2@core.after_phase2", "p2 core after p2")
        _mean(ctx, "triarchic", "births.storm", "births storm", ".1f")
    if "plastic-brain" in variants:
        _mean(ctx, "plastic-brain", "births.storm", "births storm", ".0f")


def _eval_frame(ctx: ReportContext) -> pd.DataFrame:
    rows = []
    for variant, label in _present(ctx):
        for rec in ctx.parsed(CONTRACT, STUDY, variant):
            for e in rec.info.evals:
                if e["set"] in PHASES:
                    rows.append({"model": label, "seed": rec.seed, "step": e["step"], "set": e["set"],
                                 "accuracy": e["accuracy"]})
    return pd.DataFrame(rows)


def figures(ctx: ReportContext) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns

    from circadian_vision.plastic.plots import shade_phases

    models = _present(ctx)
    s = _setting(ctx)
    titles = {"phase1": f"1: {s['groups'][0]}", "phase2": f"2: {s['groups'][1]}", "storm": "storm"}
    phases = [{**p, "name": titles.get(p["name"], p["name"])} for p in ctx.parsed(CONTRACT, STUDY)[0].info.phases]
    palette = dict(zip([label for _, label in models], sns.color_palette("colorblind", len(models))))
    names = {"phase1": f"{s['groups'][0]} (clean)", "phase2": f"{s['groups'][1]} (clean)", "storm": "inverted (storm)"}

    frame = _eval_frame(ctx)
    frame["eval set"] = frame["set"].map(names)
    ncols = min(2, len(models))
    nrows = -(-len(models) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.5, 2.9 * nrows), sharex=True, sharey=True, squeeze=False)
    flat = axes.flatten()
    for ax in flat[len(models):]:
        ax.set_visible(False)
    for i, (ax, (_, label)) in enumerate(zip(flat, models)):
        sub = frame[frame["model"] == label]
        sns.lineplot(data=sub, x="step", y="accuracy", hue="eval set", hue_order=list(names.values()), ax=ax,
                     errorbar=t_errorbar, marker="o", markersize=3, legend=i == len(models) - 1)
        shade_phases(ax, phases)
        ax.set_title(label, fontsize=9, pad=14)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("training step")
        ax.set_ylabel("held-out accuracy")
    last = flat[len(models) - 1]
    if last.get_legend() is not None:
        sns.move_legend(last, "center right", fontsize=7, title=None, frameon=True)
    fig.tight_layout()
    ctx.save_figure(fig, "plastic_phases")

    rows = []
    for variant, label in models:
        for rec in ctx.parsed(CONTRACT, STUDY, variant):
            acc = np.asarray(rec.history["acc_before"], dtype=float)
            w = 10
            smooth = np.convolve(acc, np.ones(w) / w, mode="full")[: len(acc)] / (np.minimum(np.arange(1, len(acc) + 1), w) / w)
            energy = rec.history.get("context_energy") or [None] * len(acc)
            for step, a, e in zip(rec.history["step"], smooth, energy):
                rows.append({"model": label, "seed": rec.seed, "step": step, "acc": a, "energy": e})
    dyn = pd.DataFrame(rows)
    has_energy = dyn["energy"].notna().any()
    fig, axes = plt.subplots(1, 2 if has_energy else 1, figsize=(9 if has_energy else 5, 2.9), squeeze=False)
    ax = axes[0][0]
    sns.lineplot(data=dyn, x="step", y="acc", hue="model", palette=palette, ax=ax, errorbar=None)
    shade_phases(ax, phases)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training step")
    ax.set_ylabel("accuracy before update\n(trailing mean, 10 steps)")
    ax.legend(fontsize=7, loc="lower left")
    if has_energy:
        ax = axes[0][1]
        sub = dyn[dyn["energy"].notna()].astype({"energy": float})
        sns.lineplot(data=sub, x="step", y="energy", hue="model", palette=palette, ax=ax, errorbar=t_errorbar,
                     legend=False)
        shade_phases(ax, phases)
        ax.set_xlabel("training step")
        ax.set_ylabel("context energy $\\|W_{ctx}\\|$")
    fig.tight_layout()
    ctx.save_figure(fig, "plastic_dynamics")
