"""Circadian predictive coding, NumPy (issue 2): the toy comparison and the continual-shift test.

Tables: the continual-shift metrics (A_pre, A_post, B_post, retention, balanced; mean +- 95% CI over
seeds) per profile and model beside the prototype's published balanced scores; the circadian
network's width and structural events beside the published hardest-case growth; the toy
comparison. Macros for the text: every number of the tables, the paired (same seed, same data)
circadian-minus-PC differences of the balanced score with their CIs and a verdict word each.
Figures: the balanced score per model with CIs and the published points; hidden width over
training; test accuracy on A and B over training.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from scipy import stats

from pipelines.reports import ReportContext, latex_table

STUDIES = ("cpc_toy", "cpc_shift")
ORDER = 10

PROFILES = (("strength", "Strength case", "strength_balanced"), ("hardest", "Hardest case", "hardest_balanced"))
MODELS = (("backprop", "Backprop", "backprop"), ("pc", "Predictive coding", "predictive_coding"),
          ("circadian", "Circadian PC", "circadian"))
SHIFT_METRICS = ("A_pre", "A_post", "B_post", "retention", "balanced")
TOY = (("backprop", "Backprop"), ("predictive-coding", "Predictive coding"), ("circadian", "Circadian PC"),
       ("circadian-fixed", "Circadian PC, fixed schedule"))


def _has(ctx: ReportContext, study: str, variant: str, metric: str) -> bool:
    try:
        ctx.stat(study, variant, metric)
    except KeyError:
        return False
    return True


def _val(ctx: ReportContext, study: str, variant: str, metric: str, what: str = "mean") -> float:
    return ctx.stat(study, variant, metric, what) if _has(ctx, study, variant, metric) else float("nan")


def paired_difference(ctx: ReportContext, study: str, a: str, b: str, metric: str) -> dict[str, float]:
    """Mean of ``a - b`` over the seeds both ran (same seed = same data), with a 95% t-interval."""
    runs = ctx.runs[(ctx.runs["study"] == study) & (ctx.runs["metric"] == metric)]
    wide = runs.pivot_table(index="seed", columns="variant", values="value")
    if a not in wide or b not in wide:
        return {"n": 0, "mean": float("nan"), "ci95": float("nan")}
    d = (wide[a] - wide[b]).dropna().to_numpy(dtype=float)
    n = len(d)
    mean = float(d.mean()) if n else float("nan")
    ci = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "ci95": ci, "wins": int((d > 0).sum())}


def verdict(mean: float, ci: float) -> str:
    if math.isnan(mean) or math.isnan(ci):
        return "cannot be compared with"
    if mean - ci > 0:
        return "is above"
    if mean + ci < 0:
        return "is below"
    return "is statistically indistinguishable from"


def _setting(ctx: ReportContext) -> dict[str, Any]:
    recs = ctx.records_for("cpc_shift")
    by_profile: dict[str, Any] = {}
    for r in recs:
        by_profile.setdefault(r["info"]["task"]["profile"], r)
    return {"seeds": len({r["seed"] for r in recs}), "by_profile": by_profile}


def tables(ctx: ReportContext) -> None:
    if ctx.has("cpc_shift"):
        _shift_tables(ctx)
    if ctx.has("cpc_toy"):
        _toy_table(ctx)


def _shift_tables(ctx: ReportContext) -> None:
    s = _setting(ctx)
    ctx.macro(("cpc", "shift", "seeds"), s["seeds"], "d", source="cpc_shift records: number of seeds")
    for key, _, _ in PROFILES:
        rec = s["by_profile"].get(f"{key}-case")
        if rec is None:
            continue
        task, cfg = rec["info"]["task"], rec["config"]
        src = f"cpc_shift {key}-case record: task config"
        ctx.macro(("cpc", key, "rotation"), task["rotation_deg"], ".0f", source=src)
        ctx.macro(("cpc", key, "planes"), task["rotation_planes"], "d", source=src)
        ctx.macro(("cpc", key, "translation"), task["translation"], ".1f", source=src)
        ctx.macro(("cpc", key, "noise", "mult"), task["noise_b_mult"], ".1f", source=src)
        ctx.macro(("cpc", key, "clusters"), task["clusters_per_class"], "d", source=src)
        ctx.macro(("cpc", key, "b", "per", "class"), task["b_per_class"], "d", source=src + " (phase-B rows per class)")
        if key == "strength":
            ctx.macro(("cpc", "shift", "dim"), task["dim"], "d", source=src)
            ctx.macro(("cpc", "shift", "a", "per", "class"), task["n_train_per_class"], "d", source=src)
            ctx.macro(("cpc", "shift", "test", "per", "class"), task["n_test_per_class"], "d", source=src)
            ctx.macro(("cpc", "shift", "holdout", "pct"), 100 * task["holdout_fraction"], ".0f", source=src)
            ctx.macro(("cpc", "shift", "epochs", "a"), cfg["epochs_a"], "d", source="cpc_shift config epochs_a")
            ctx.macro(("cpc", "shift", "epochs", "b"), cfg["epochs_b"], "d", source="cpc_shift config epochs_b")

    rows: list[list[str] | None] = []
    frame = []
    for key, label, pub_key in PROFILES:
        published = ctx.published(f"cpc.{pub_key}")
        block = []
        for mkey, mlabel, pkey in MODELS:
            variant = f"{key}-{mkey}"
            if not _has(ctx, "cpc_shift", variant, "balanced"):
                continue
            cells = [ctx.mean_pm(("cpc", key, mkey, m), "cpc_shift", variant, m) for m in SHIFT_METRICS]
            pub = (ctx.macro(("cpc", "published", key, mkey), published[pkey], ".3f",
                             source=f"published.yaml cpc.{pub_key}.{pkey}") if pkey in published else "---")
            block.append(["" if block else label, mlabel, *cells, pub])
            frame.append({"profile": f"{key}-case", "model": pkey,
                          **{f"{m}_{w}": _val(ctx, "cpc_shift", variant, m, w) for m in SHIFT_METRICS
                             for w in ("mean", "ci95")},
                          "published_balanced": published.get(pkey, float("nan"))})
        if block and rows:
            rows.append(None)
        rows.extend(block)
    ctx.write_csv("cpc_shift_results", pd.DataFrame(frame))
    ctx.write_table(
        "cpc_shift",
        _table_with_rules(
            ["Profile", "Model", "$A_\\mathrm{pre}$", "$A_\\mathrm{post}$", "$B_\\mathrm{post}$", "Retention",
             "Balanced", "Published"],
            rows,
            caption=("Continual shift: test accuracy on phase A's task before ($A_\\mathrm{pre}$) and after "
                     "($A_\\mathrm{post}$) phase B, on phase B's task after it ($B_\\mathrm{post}$), retention "
                     "$A_\\mathrm{post}/A_\\mathrm{pre}$ and the balanced score $(A_\\mathrm{post}+B_\\mathrm{post})/2$; "
                     "mean $\\pm$ 95\\% CI over \\cpcShiftSeeds{} seeds. \\emph{Published}: the prototype's balanced "
                     "score on its own data of the same profile (not the same draws)."),
            label="tab:cpc-shift",
        ),
    )

    # paired differences (same seed = same data for every model)
    for key, _, _ in PROFILES:
        for other in ("pc", "backprop"):
            d = paired_difference(ctx, "cpc_shift", f"{key}-circadian", f"{key}-{other}", "balanced")
            if d["n"] == 0:
                continue
            p = ("cpc", key, "circ", "minus", other)
            src = f"{ctx.profile}:cpc_shift paired {key}-circadian minus {key}-{other} balanced"
            ctx.macro((*p, "mean"), d["mean"], "+.3f", source=src + " mean")
            ctx.macro((*p, "ci"), d["ci95"], ".3f", source=src + " 95% CI half-width")
            ctx.macro((*p, "wins"), d["wins"], "d", source=src + " seeds with circadian ahead")
            ctx.macro((*p, "verdict"), verdict(d["mean"], d["ci95"]), source=src + " (sign of the CI)")
    _width_table(ctx)


def _table_with_rules(header: list[str], rows: list[list[str] | None], **kw: Any) -> str:
    """latex_table, with None rows rendered as \\midrule."""
    marker = "@@MIDRULE@@"
    tex = latex_table(header, [r if r is not None else [marker] for r in rows], align="ll" + "c" * 6,
                      size="\\footnotesize\\setlength{\\tabcolsep}{2.5pt}", **kw)
    return tex.replace(f"{marker} \\\\", "\\midrule")


def _width_table(ctx: ReportContext) -> None:
    pub = ctx.published("cpc.hardest_hidden")
    rows, frame = [], []
    for key, label, _ in PROFILES:
        variant = f"{key}-circadian"
        if not _has(ctx, "cpc_shift", variant, "hidden_end"):
            continue
        p = ("cpc", key, "width")
        cells = [ctx.macro((*p, "start"), _val(ctx, "cpc_shift", variant, "hidden_start"), ".0f",
                           source=f"{ctx.profile}:cpc_shift/{variant}/hidden_start")]
        cells.append(ctx.mean_pm((*p, "end"), "cpc_shift", variant, "hidden_end", ".1f"))
        for m in ("splits", "prunes", "rollbacks", "sleeps", "sleeps_b"):
            cells.append(ctx.macro((*p, m), _val(ctx, "cpc_shift", variant, m), ".1f",
                                   source=f"{ctx.profile}:cpc_shift/{variant}/{m} mean"))
        rows.append([label, "ours", *cells])
        frame.append({"profile": f"{key}-case", **{m: _val(ctx, "cpc_shift", variant, m) for m in
                      ("hidden_start", "hidden_mid", "hidden_end", "splits", "splits_b", "prunes", "rollbacks", "sleeps",
                       "sleeps_b")}})
        if key == "hardest":
            rows.append(["", "published",
                         ctx.macro(("cpc", "published", "width", "start"), pub["start"], "d",
                                   source="published.yaml cpc.hardest_hidden.start"),
                         ctx.macro(("cpc", "published", "width", "end"), pub["end"], ".2f",
                                   source="published.yaml cpc.hardest_hidden.end"),
                         ctx.macro(("cpc", "published", "splits"), pub["splits"], ".2f",
                                   source="published.yaml cpc.hardest_hidden.splits"),
                         "---", "---", "---", "---"])
    if not rows:
        return
    ctx.write_csv("cpc_width", pd.DataFrame(frame))
    ctx.write_table(
        "cpc_width",
        latex_table(
            ["Profile", "", "Start", "End", "Splits", "Prunes", "Rollbacks", "Sleeps", "in phase B"],
            rows,
            caption=("Hidden width of the circadian network: at the start, at the end (mean $\\pm$ 95\\% CI), "
                     "and the mean number of committed splits and prunes, of sleeps undone by the rollback "
                     "guard, and of sleeps per run (in all, and during phase B). Splits and prunes of a "
                     "rolled-back sleep are not counted."),
            label="tab:cpc-width",
            align="llccccccc",
            size="\\footnotesize",
        ),
    )


def _toy_table(ctx: ReportContext) -> None:
    recs = ctx.records_for("cpc_toy")
    task = recs[0]["info"]["task"]
    src = "cpc_toy record: task config"
    ctx.macro(("cpc", "toy", "dim"), task["dim"], "d", source=src)
    ctx.macro(("cpc", "toy", "separation"), task["separation"], ".1f", source=src)
    ctx.macro(("cpc", "toy", "train"), task["split"]["train"], "d", source=src + " (training rows)")
    ctx.macro(("cpc", "toy", "test"), task["split"]["test"], "d", source=src + " (test rows)")
    ctx.macro(("cpc", "toy", "seeds"), len({r["seed"] for r in recs}), "d", source="cpc_toy: number of seeds")
    ctx.macro(("cpc", "toy", "epochs"), recs[0]["config"]["epochs"], "d", source="cpc_toy config epochs")
    rows, frame = [], []
    for variant, label in TOY:
        if not _has(ctx, "cpc_toy", variant, "accuracy"):
            continue
        p = ("cpc", "toy", variant)
        cells = [ctx.mean_pm((*p, "accuracy"), "cpc_toy", variant, "accuracy"),
                 ctx.mean_pm((*p, "loss"), "cpc_toy", variant, "loss")]
        for m, fmt in (("hidden_end", ".1f"), ("sleeps", ".1f"), ("splits", ".1f"), ("prunes", ".1f"),
                       ("rollbacks", ".1f")):
            cells.append(ctx.macro((*p, m), _val(ctx, "cpc_toy", variant, m), fmt,
                                   source=f"{ctx.profile}:cpc_toy/{variant}/{m} mean"))
        rows.append([label, *cells])
        frame.append({"variant": variant, **{m: _val(ctx, "cpc_toy", variant, m) for m in
                      ("accuracy", "loss", "hidden_start", "hidden_end", "sleeps", "splits", "prunes", "rollbacks")}})
    ctx.write_csv("cpc_toy_results", pd.DataFrame(frame))
    ctx.write_table(
        "cpc_toy",
        latex_table(
            ["Model", "Accuracy", "BCE", "Width", "Sleeps", "Splits", "Prunes", "Rollbacks"],
            rows,
            caption=("Toy two-cluster comparison: test accuracy and BCE (mean $\\pm$ 95\\% CI over "
                     "\\cpcToySeeds{} seeds), final hidden width and the circadian events (means)."),
            label="tab:cpc-toy",
            align="lccccccc",
            size="\\footnotesize",
        ),
    )


# ---- figures --------------------------------------------------------------------------------------
def figures(ctx: ReportContext) -> None:
    if not ctx.has("cpc_shift"):
        return
    import matplotlib.pyplot as plt
    import seaborn as sns

    labels = {mkey: mlabel for mkey, mlabel, _ in MODELS}
    pub_keys = {mkey: pkey for mkey, _, pkey in MODELS}
    runs = ctx.runs[(ctx.runs["study"] == "cpc_shift") & (ctx.runs["metric"] == "balanced")].copy()
    runs["profile"] = runs["variant"].str.split("-").str[0] + " case"
    runs["model"] = runs["variant"].str.split("-").str[1].map(labels)
    order = [labels[m] for m, _, _ in MODELS]
    fig, axes = plt.subplots(1, 2, figsize=(6.6, 2.8), sharey=False)
    for ax, (key, label, pub_key) in zip(axes, PROFILES):
        sub = runs[runs["profile"] == f"{key} case"]
        if sub.empty:
            ax.set_visible(False)
            continue
        sns.pointplot(sub, x="model", y="value", order=order, errorbar=("ci", 95), linestyle="none",
                      capsize=0.2, ax=ax, label="ours (95% CI)")
        sns.stripplot(sub, x="model", y="value", order=order, color="0.6", size=3, ax=ax, zorder=0)
        published = ctx.published(f"cpc.{pub_key}")
        xs = [i for i, m in enumerate(MODELS) if pub_keys[m[0]] in published]
        ax.scatter(xs, [published[pub_keys[MODELS[i][0]]] for i in xs], marker="x", color="C3", zorder=5,
                   label="published")
        ax.set_title(label)
        ax.set_xlabel("")
        ax.set_ylabel("balanced score" if key == "strength" else "")
        ax.tick_params(axis="x", labelrotation=15)
    for ax in axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    handles, names = axes[0].get_legend_handles_labels()
    keep = {n: h for h, n in zip(handles, names) if n in ("ours (95% CI)", "published")}
    axes[0].legend(list(keep.values()), list(keep), fontsize=7, loc="lower right")
    fig.tight_layout()
    ctx.save_figure(fig, "cpc_balanced")

    # hidden width and test accuracy over training (mean and 95% band over seeds)
    rows = []
    for key, label, _ in PROFILES:
        for mkey, mlabel, _ in MODELS:
            for r in ctx.records_for("cpc_shift", f"{key}-{mkey}"):
                h = r["history"]
                for i, epoch in enumerate(h["epoch"]):
                    rows.append({"profile": label, "model": mlabel, "seed": r["seed"], "epoch": epoch,
                                 "hidden": h["hidden"][i], "task A": h["acc_a"][i], "task B": h["acc_b"][i]})
    if not rows:
        return
    frame = pd.DataFrame(rows)
    epochs_a = {label: ctx.records_for("cpc_shift", f"{key}-circadian")[0]["config"]["epochs_a"]
                for key, label, _ in PROFILES if ctx.records_for("cpc_shift", f"{key}-circadian")}
    circ = frame[frame["model"] == labels["circadian"]]
    if not circ.empty:
        fig, ax = plt.subplots(figsize=(4.6, 2.8))
        sns.lineplot(circ, x="epoch", y="hidden", hue="profile", errorbar=("ci", 95), ax=ax)
        for x in set(epochs_a.values()):
            ax.axvline(x, color="0.5", linestyle=":", linewidth=1)
        ax.set_ylabel("hidden width (circadian)")
        ax.set_xlabel("epoch (dotted: start of phase B)")
        ctx.save_figure(fig, "cpc_width")

    long = frame.melt(id_vars=["profile", "model", "seed", "epoch"], value_vars=["task A", "task B"],
                      var_name="task", value_name="accuracy")
    grid = sns.relplot(long, x="epoch", y="accuracy", hue="model", style="task", col="profile", kind="line",
                       errorbar=None, height=2.6, aspect=1.2, facet_kws={"sharey": True})
    for ax in grid.axes.flat:
        for x in set(epochs_a.values()):
            ax.axvline(x, color="0.5", linestyle=":", linewidth=1)
    grid.set_axis_labels("epoch", "test accuracy")
    ctx.save_figure(grid.figure, "cpc_accuracy")


__all__ = ["STUDIES", "figures", "paired_difference", "tables", "verdict"]
