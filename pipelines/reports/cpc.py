"""Circadian predictive coding, NumPy (issue 2): the prototype's own continual shift, our extension, the toy.

Tables: the prototype's protocol (``proto-strength`` / ``proto-hardest`` cells: its data, epochs,
architecture and forced sleep schedule) beside its published scores, the only place those numbers
are quoted against ours; our extension tasks (``strength-case`` / ``hardest-case``), labelled as
such; the circadian network's width and structural events (with the distinct units among them);
every paired comparison the text states (difference over seeds, 95% t-interval, paired t-test);
the toy comparison. Records are read through the studies' contracts. Figures: the balanced score
per model (same t-interval as the tables), hidden width over training, accuracies over training.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from circadian_core.stats import PAIRED_TEST, PairedDifference, t_errorbar
from circadian_vision.studies.continual_shift import CONTRACT as SHIFT
from circadian_vision.studies.cpc_toy import CONTRACT as TOY
from pipelines.reports import ReportContext, latex_table
from pipelines.reports.context import macro_name

STUDIES = ("cpc_toy", "cpc_shift")
ORDER = 10

# (profile key of the variants, label, published.yaml key or None for our extension)
PROTO = (("proto-strength", "Strength case", "proto_strength"), ("proto-hardest", "Hardest case", "proto_hardest"))
EXTENSION = (("strength", "Strength case (ours)", None), ("hardest", "Hardest case (ours)", None))
MODELS = (("backprop", "Backprop", "backprop"), ("pc", "Predictive coding", "predictive_coding"),
          ("circadian", "Circadian PC", "circadian"))
SHIFT_METRICS = ("A_pre", "A_post", "B_post", "retention", "balanced")
PAIRS = (("circadian", "pc"), ("circadian", "backprop"), ("pc", "backprop"))
TOY_VARIANTS = (("backprop", "Backprop"), ("predictive-coding", "Predictive coding"), ("circadian", "Circadian PC"),
                ("circadian-fixed", "Circadian, fixed sleeps"))
TOY_PAIRS = (("circadian", "predictive-coding"), ("circadian", "backprop"), ("circadian", "circadian-fixed"))


def _key(profile: str) -> str:
    """Macro-friendly name of a profile: proto-hardest -> protohardest, strength -> strength."""
    return profile.replace("-", "")


def paired_cells(ctx: ReportContext, prefix: tuple[str, ...], d: PairedDifference, source: str,
                 fmt: str = ".3f") -> list[str]:
    """Table cells ``[difference, 95% CI, p, n]`` of a paired difference, every number a macro."""
    ctx.paired_pm(prefix, d, fmt, source=source)

    def m(part: str) -> str:
        return "\\" + macro_name((*prefix, part))

    if d.n < 2:
        return [m("diff"), "---", "---", str(d.n)]
    return [m("diff"), f"[{m('low')}, {m('high')}]", m("p"), m("n")]


def paired_table(ctx: ReportContext, name: str, rows: list[list[str]], *, caption: str, label: str,
                 first: tuple[str, ...] = ("Setting", "Comparison")) -> None:
    """A table of paired differences: the leading columns, then difference, 95% CI, p, n."""
    if not rows:
        return
    ctx.write_table(name, latex_table(
        [*first, "Difference", "95\\% CI", "$p$", "$n$"], rows,
        caption=caption + f" Paired over seeds (same seed, same data and data order); {PAIRED_TEST}, two-sided.",
        label=label, align="l" * len(first) + "cccc", size="\\footnotesize"))


def _has(ctx: ReportContext, study: str, variant: str) -> bool:
    return bool(ctx.records_for(study, variant))


def tables(ctx: ReportContext) -> None:
    if ctx.has("cpc_shift"):
        _setting(ctx)
        _shift_table(ctx, PROTO, "cpc_proto", "tab:cpc-proto", published=True)
        _shift_table(ctx, EXTENSION, "cpc_shift", "tab:cpc-shift", published=False)
        _width_table(ctx)
        _shift_paired(ctx)
        _summary(ctx)
    if ctx.has("cpc_toy"):
        _toy_table(ctx)


# ---- setting, read through the contract -------------------------------------------------------------
def _setting(ctx: ReportContext) -> None:
    seeds = {r.seed for r in ctx.parsed(SHIFT, "cpc_shift")}
    ctx.macro(("cpc", "shift", "seeds"), len(seeds), "d", source="cpc_shift records: number of seeds")
    for profile, _, _ in (*PROTO, *EXTENSION):
        variant = f"{profile}-circadian"
        if not _has(ctx, "cpc_shift", variant):
            continue
        rec = ctx.parsed(SHIFT, "cpc_shift", variant)[0]
        task, k, src = rec.info.task, _key(profile), f"cpc_shift {variant} record: task config"
        ctx.macro(("cpc", k, "epochs", "a"), rec.settings.epochs_a, "d", source=src)
        ctx.macro(("cpc", k, "epochs", "b"), rec.settings.epochs_b, "d", source=src)
        ctx.macro(("cpc", k, "rotation"), task["rotation_deg"], ".0f", source=src)
        ctx.macro(("cpc", k, "b", "per", "class"), task["b_per_class"], "d", source=src + " (phase-B rows per class)")
        ctx.macro(("cpc", k, "width", "start"), rec.metrics["hidden_start"], ".0f", source=src)
        if profile.startswith("proto"):
            ctx.macro(("cpc", k, "samples"), task["samples_a"], "d", source=src)
            ctx.macro(("cpc", k, "noise", "b"), task["noise_b"], ".2f", source=src)
            ctx.macro(("cpc", k, "translation", "x"), task["translation"][0], ".1f", source=src)
            ctx.macro(("cpc", k, "translation", "y"), task["translation"][1], ".1f", source=src)
            ctx.macro(("cpc", k, "sleep", "a"), rec.settings.sleep_every[0], "d", source=src)
            ctx.macro(("cpc", k, "sleep", "b"), rec.settings.sleep_every[1], "d", source=src)
            ctx.macro(("cpc", k, "layers"), len(rec.settings.circadian.get("trunk", [])) + 1, "d", source=src)
            ctx.macro(("cpc", k, "test"), task["a"]["test"], "d", source=src + " (test rows per phase)")
        else:
            ctx.macro(("cpc", k, "clusters"), task["clusters_per_class"], "d", source=src)
            ctx.macro(("cpc", k, "planes"), task["rotation_planes"], "d", source=src)
            ctx.macro(("cpc", k, "translation"), task["translation"], ".1f", source=src)
            ctx.macro(("cpc", k, "noise", "mult"), task["noise_b_mult"], ".1f", source=src)
            ctx.macro(("cpc", "shift", "dim"), task["dim"], "d", source=src)
            ctx.macro(("cpc", "shift", "a", "per", "class"), task["n_train_per_class"], "d", source=src)
            ctx.macro(("cpc", "shift", "test", "per", "class"), task["n_test_per_class"], "d", source=src)
            ctx.macro(("cpc", "shift", "holdout", "pct"), 100 * task["holdout_fraction"], ".0f", source=src)


# ---- the five shift scores per model ------------------------------------------------------------------
def _shift_table(ctx: ReportContext, profiles: tuple[tuple[str, str, str | None], ...], name: str, label: str,
                 *, published: bool) -> None:
    rows: list[list[str] | None] = []
    frame = []
    for profile, plabel, pub_key in profiles:
        pub = ctx.published(f"cpc.{pub_key}") if pub_key else {}
        block = []
        for mkey, mlabel, pkey in MODELS:
            variant = f"{profile}-{mkey}"
            if not _has(ctx, "cpc_shift", variant):
                continue
            cells = [ctx.mean_pm(("cpc", _key(profile), mkey, m), "cpc_shift", variant, m) for m in SHIFT_METRICS]
            block.append(["" if block else plabel, mlabel, *cells])
            frame.append({"profile": profile, "model": pkey, "source": "ours",
                          **{f"{m}_{w}": ctx.val("cpc_shift", variant, m, w) for m in SHIFT_METRICS
                             for w in ("mean", "ci95")}})
            if published and pkey in pub:
                src = f"published.yaml cpc.{pub_key}.{pkey}"
                block.append(["", "\\quad published", *[
                    ctx.macro(("cpc", "published", _key(profile), mkey, m), pub[pkey][m], ".3f", source=src)
                    for m in SHIFT_METRICS]])
                frame.append({"profile": profile, "model": pkey, "source": "published",
                              **{f"{m}_mean": pub[pkey][m] for m in SHIFT_METRICS}})
        if block and rows:
            rows.append(None)
        rows.extend(block)
    if not frame:
        return
    ctx.write_csv(f"{name}_results", pd.DataFrame(frame))
    what = ("The prototype's own continual shift (its 2-D data draw for draw, its epochs, architecture and "
            "forced sleep schedule) with its published means over the same seeds below each of our rows"
            if published else
            "Our extension of the continual shift (6-D mixtures of Gaussian clusters, minibatches, adaptive "
            "sleep, rollback guard on held-out training data); the prototype published nothing for these tasks")
    ctx.write_table(name, _table_with_rules(
        ["Task", "Model", "$A_\\mathrm{pre}$", "$A_\\mathrm{post}$", "$B_\\mathrm{post}$", "Retention", "Balanced"],
        rows,
        caption=(f"{what}. Test accuracy on phase A's task before ($A_\\mathrm{{pre}}$) and after "
                 "($A_\\mathrm{post}$) phase B, on phase B's task after it ($B_\\mathrm{post}$), retention "
                 "$A_\\mathrm{post}/A_\\mathrm{pre}$ and the balanced score $(A_\\mathrm{post}+B_\\mathrm{post})/2$; "
                 "mean $\\pm$ 95\\% t-interval over \\cpcShiftSeeds{} seeds."),
        label=label))


def _table_with_rules(header: list[str], rows: list[list[str] | None], **kw: Any) -> str:
    """latex_table, with None rows rendered as \\midrule."""
    marker = "@@MIDRULE@@"
    tex = latex_table(header, [r if r is not None else [marker] for r in rows], align="ll" + "c" * (len(header) - 2),
                      size="\\footnotesize\\setlength{\\tabcolsep}{2.5pt}", **kw)
    return tex.replace(f"{marker} \\\\", "\\midrule")


# ---- width and structural events --------------------------------------------------------------------
WIDTH_METRICS = (("splits", ".1f"), ("prunes", ".1f"), ("rollbacks", ".1f"), ("sleeps", ".1f"),
                 ("structural_sleeps", ".1f"), ("sleeps_b", ".1f"))


def _width_table(ctx: ReportContext) -> None:
    rows, frame = [], []
    for profile, label, pub_key in (*PROTO, *EXTENSION):
        variant = f"{profile}-circadian"
        if not _has(ctx, "cpc_shift", variant):
            continue
        p = ("cpc", _key(profile), "width")
        cells = [ctx.mean_pm((*p, "end"), "cpc_shift", variant, "hidden_end", ".1f"),
                 ctx.mean_pm((*p, "distinct"), "cpc_shift", variant, "distinct_end", ".1f")]
        cells += [ctx.macro((*p, m), ctx.val("cpc_shift", variant, m), fmt, source=f"{ctx.profile}:cpc_shift/{variant}/{m} mean")
                  for m, fmt in WIDTH_METRICS]
        rows.append([label, "ours", f"\\cpc{_key(profile).title()}WidthStart", *cells])
        frame.append({"profile": profile, "source": "ours", **{m: ctx.val("cpc_shift", variant, m) for m in
                      ("hidden_start", "hidden_end", "distinct_end", *[m for m, _ in WIDTH_METRICS], "splits_b")}})
        if pub_key:
            pub = ctx.published(f"cpc.{pub_key}.circadian")
            src = f"published.yaml cpc.{pub_key}.circadian"
            q = ("cpc", "published", _key(profile))
            rows.append(["", "published",
                         ctx.macro((*q, "width", "start"), pub["hidden_start"], "d", source=src),
                         ctx.macro((*q, "width", "end"), pub["hidden_end"], ".2f", source=src), "---",
                         ctx.macro((*q, "splits"), pub["splits"], ".2f", source=src),
                         ctx.macro((*q, "prunes"), pub["prunes"], ".2f", source=src), "---", "---",
                         ctx.macro((*q, "sleep", "events"), pub["sleep_events"], ".2f", source=src), "---"])
            frame.append({"profile": profile, "source": "published", "hidden_start": pub["hidden_start"],
                          "hidden_end": pub["hidden_end"], "splits": pub["splits"], "prunes": pub["prunes"],
                          "structural_sleeps": pub["sleep_events"]})
    if not rows:
        return
    ctx.write_csv("cpc_width", pd.DataFrame(frame))
    ctx.write_table("cpc_width", latex_table(
        ["Task", "", "Start", "End", "Distinct", "Splits", "Prunes", "Rollb.", "Sleeps", "Struct.", "in B"],
        rows,
        caption=("Width of the circadian network's adaptive hidden layer: at the start, at the end and the "
                 "distinct units among them at the end (units whose incoming weights have cosine $>0.999$ "
                 "counted once; mean $\\pm$ 95\\% t-interval), and per run the mean number of committed splits "
                 "and prunes, sleeps undone by the rollback guard, sleeps, \\emph{structural} sleeps (kept "
                 "sleeps that split or pruned: the prototype's ``sleep events'') and sleeps during phase B. "
                 "Splits and prunes of a rolled-back sleep are not counted."),
        label="tab:cpc-width", align="llccccccccc", size="\\footnotesize\\setlength{\\tabcolsep}{3pt}"))


def _summary(ctx: ReportContext) -> None:
    """Numbers and words the text draws from the tables: published means inside our intervals, the share
    of added units that are distinct, how often the adaptive trigger's conditions held in phase B."""
    verdicts = []
    for profile, label, pub_key in PROTO:
        if not _has(ctx, "cpc_shift", f"{profile}-circadian"):
            continue
        k, pub = _key(profile), ctx.published(f"cpc.{pub_key}")
        inside = sum(abs(ctx.val("cpc_shift", f"{profile}-{m}", "balanced") - pub[pk]["balanced"])
                     <= ctx.val("cpc_shift", f"{profile}-{m}", "balanced", "ci95") for m, _, pk in MODELS)
        ctx.macro(("cpc", k, "published", "inside"), inside, "d",
                  source=f"{ctx.profile}:cpc_shift {profile}: models whose published balanced mean lies in our 95% CI")
        start, end = ctx.val("cpc_shift", f"{profile}-circadian", "distinct_start"), ctx.val(
            "cpc_shift", f"{profile}-circadian", "hidden_end")
        ctx.macro(("cpc", k, "distinct", "start"), start, ".1f",
                  source=f"{ctx.profile}:cpc_shift/{profile}-circadian/distinct_start mean")
        distinct = ctx.val("cpc_shift", f"{profile}-circadian", "distinct_end")
        added = end - ctx.val("cpc_shift", f"{profile}-circadian", "hidden_start")
        ctx.macro(("cpc", k, "new", "distinct", "pct"), 100 * max(distinct - start, 0.0) / added if added > 0 else 0.0,
                  ".0f", source=f"{ctx.profile}:cpc_shift {profile}-circadian (distinct_end - distinct_start) / units "
                  "added x 100 (0 when none was added)")
        d = ctx.paired("cpc_shift", f"{profile}-circadian", f"{profile}-pc", "balanced")
        verdicts.append((label.lower(), d.verdict("above", "below", "indistinguishable from")))
    if verdicts:
        ties = all(v == "indistinguishable from" for _, v in verdicts)
        text = ("do not separate circadian predictive coding from predictive coding on either of its tasks" if ties
                else "; ".join(f"put circadian predictive coding {v} predictive coding in the {p}" for p, v in verdicts))
        ctx.macro(("cpc", "proto", "circ", "vs", "pc", "summary"), text,
                  source=f"{ctx.profile}:cpc_shift proto-* circadian - pc balanced: signs of the 95% CIs")
    for profile, _, _ in EXTENSION:
        variant = f"{profile}-circadian"
        if _has(ctx, "cpc_shift", variant):
            for m in ("spread_held_b", "plateau_held_b"):
                ctx.number_or(("cpc", profile, m.replace("_b", ""), "pct"), 100 * ctx.val("cpc_shift", variant, m), ".0f",
                              source=f"{ctx.profile}:cpc_shift/{variant}/{m} mean x 100", missing="n/a")


# ---- every comparison the text states, paired ----------------------------------------------------------
def _shift_paired(ctx: ReportContext) -> None:
    rows: list[list[str]] = []
    names = {k: v for k, v, _ in MODELS}
    for profile, label, _ in (*PROTO, *EXTENSION):
        first = True
        for a, b in PAIRS:
            va, vb = f"{profile}-{a}", f"{profile}-{b}"
            if not (_has(ctx, "cpc_shift", va) and _has(ctx, "cpc_shift", vb)):
                continue
            for metric in ("balanced", "retention") if (a, b) == PAIRS[0] else ("balanced",):
                d = ctx.paired("cpc_shift", va, vb, metric)
                if d.n == 0:
                    continue
                prefix = ("cpc", _key(profile), a, "minus", b, metric)
                cells = paired_cells(ctx, prefix, d, f"{ctx.profile}:cpc_shift {va} - {vb} {metric}")
                if a == "circadian" and metric == "balanced":  # the comparisons the text puts in words
                    ctx.macro((*prefix, "verdict"), d.verdict("above", "below", "indistinguishable from"),
                              source=f"{ctx.profile}:cpc_shift {va} - {vb} {metric}: sign of the 95% CI")
                rows.append([label if first else "", f"{names[a]} $-$ {names[b]}, {metric}", *cells])
                first = False
    paired_table(ctx, "cpc_paired", rows, caption="Continual shift: every comparison the text states.",
                 label="tab:cpc-paired", first=("Task", "Comparison"))


# ---- toy ------------------------------------------------------------------------------------------------
def _toy_table(ctx: ReportContext) -> None:
    recs = ctx.parsed(TOY, "cpc_toy")
    task, src = recs[0].info.task, "cpc_toy record: task config"
    ctx.macro(("cpc", "toy", "dim"), task["dim"], "d", source=src)
    ctx.macro(("cpc", "toy", "separation"), task["separation"], ".1f", source=src)
    ctx.macro(("cpc", "toy", "train"), task["split"]["train"], "d", source=src + " (training rows)")
    ctx.macro(("cpc", "toy", "test"), task["split"]["test"], "d", source=src + " (test rows)")
    ctx.macro(("cpc", "toy", "seeds"), len({r.seed for r in recs}), "d", source="cpc_toy: number of seeds")
    ctx.macro(("cpc", "toy", "epochs"), recs[0].settings.epochs, "d", source="cpc_toy config epochs")
    rows, frame = [], []
    for variant, label in TOY_VARIANTS:
        if not _has(ctx, "cpc_toy", variant):
            continue
        p = ("cpc", "toy", variant)
        cells = [ctx.mean_pm((*p, "accuracy"), "cpc_toy", variant, "accuracy"),
                 ctx.mean_pm((*p, "loss"), "cpc_toy", variant, "loss")]
        for m in ("hidden_end", "distinct_end", "sleeps", "splits", "prunes", "rollbacks"):
            value = ctx.val("cpc_toy", variant, m)
            cells.append("---" if value != value else ctx.macro((*p, m), value, ".1f",
                                                                 source=f"{ctx.profile}:cpc_toy/{variant}/{m} mean"))
        rows.append([label, *cells])
        frame.append({"variant": variant, **{m: ctx.val("cpc_toy", variant, m) for m in
                      ("accuracy", "loss", "hidden_start", "hidden_end", "distinct_end", "sleeps", "splits", "prunes",
                       "rollbacks")}})
    ctx.write_csv("cpc_toy_results", pd.DataFrame(frame))
    ctx.write_table("cpc_toy", latex_table(
        ["Model", "Accuracy", "BCE", "Width", "Distinct", "Sleeps", "Splits", "Prunes", "Rollb."], rows,
        caption=("Toy two-cluster comparison: test accuracy and BCE (mean $\\pm$ 95\\% t-interval over "
                 "\\cpcToySeeds{} seeds), final hidden width, distinct units and the circadian events (means)."),
        label="tab:cpc-toy", align="lcccccccc", size="\\footnotesize\\setlength{\\tabcolsep}{3pt}"))
    paired = []
    for a, b in TOY_PAIRS:
        if _has(ctx, "cpc_toy", a) and _has(ctx, "cpc_toy", b):
            d = ctx.paired("cpc_toy", a, b, "accuracy")
            la, lb = dict(TOY_VARIANTS)[a], dict(TOY_VARIANTS)[b]
            paired.append([f"{la} $-$ {lb}", *paired_cells(ctx, ("cpc", "toy", a, "minus", b), d,
                                                             f"{ctx.profile}:cpc_toy {a} - {b} accuracy")])
    paired_table(ctx, "cpc_toy_paired", paired, caption="Toy comparison: paired differences of the test accuracy.",
                 label="tab:cpc-toy-paired", first=("Comparison",))


# ---- figures --------------------------------------------------------------------------------------------
def figures(ctx: ReportContext) -> None:
    if not ctx.has("cpc_shift"):
        return
    import matplotlib.pyplot as plt
    import seaborn as sns

    labels = {mkey: mlabel for mkey, mlabel, _ in MODELS}
    order = [labels[m] for m, _, _ in MODELS]
    profiles = [p for p in (*PROTO, *EXTENSION) if _has(ctx, "cpc_shift", f"{p[0]}-circadian")]
    runs = ctx.runs[(ctx.runs["study"] == "cpc_shift") & (ctx.runs["metric"] == "balanced")].copy()
    fig, axes = plt.subplots(1, len(profiles), figsize=(2.6 * len(profiles), 2.8), squeeze=False)
    for ax, (profile, label, pub_key) in zip(axes[0], profiles):
        sub = runs[runs["variant"].str.startswith(profile + "-")].copy()
        sub["model"] = sub["variant"].str[len(profile) + 1:].map(labels)
        sns.pointplot(sub, x="model", y="value", order=order, errorbar=t_errorbar, linestyle="none", capsize=0.2,
                      ax=ax, label="ours (95% t-interval)")
        sns.stripplot(sub, x="model", y="value", order=order, color="0.6", size=3, ax=ax, zorder=0)
        if pub_key:
            pub = ctx.published(f"cpc.{pub_key}")
            xs = [i for i, (_, _, pk) in enumerate(MODELS) if pk in pub]
            ax.scatter(xs, [pub[MODELS[i][2]]["balanced"] for i in xs], marker="x", color="C3", zorder=5,
                       label="published (same protocol)")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("")
        ax.set_ylabel("balanced score" if ax is axes[0][0] else "")
        ax.tick_params(axis="x", labelrotation=25, labelsize=7)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    handles, names = axes[0][0].get_legend_handles_labels()
    keep = {n: h for h, n in zip(handles, names) if n.startswith(("ours", "published"))}
    axes[0][0].legend(list(keep.values()), list(keep), fontsize=6, loc="lower left")
    fig.tight_layout()
    ctx.save_figure(fig, "cpc_balanced")
    _history_figures(ctx, profiles, labels)


def _history_figures(ctx: ReportContext, profiles: list[tuple[str, str, str | None]], labels: dict[str, str]) -> None:
    import seaborn as sns

    rows, phase_b = [], {}
    for profile, label, _ in profiles:
        for mkey, mlabel, _ in MODELS:
            for r in ctx.parsed(SHIFT, "cpc_shift", f"{profile}-{mkey}"):
                phase_b[label] = r.settings.epochs_a
                h = r.history
                for i, epoch in enumerate(h["epoch"]):
                    rows.append({"task": label, "model": mlabel, "seed": r.seed, "epoch": epoch,
                                 "hidden": h["hidden"][i], "task A": h["acc_a"][i], "task B": h["acc_b"][i]})
    if not rows:
        return
    frame = pd.DataFrame(rows)
    circ = frame[frame["model"] == labels["circadian"]]
    grid = sns.relplot(circ, x="epoch", y="hidden", col="task", kind="line", errorbar=t_errorbar, height=2.3,
                       aspect=1.0, facet_kws={"sharey": False, "sharex": False})
    for ax, (label, _, _) in zip(grid.axes.flat, [(p[1], 0, 0) for p in profiles]):
        ax.axvline(phase_b.get(label, 0), color="0.5", linestyle=":", linewidth=1)
    grid.set_axis_labels("epoch", "hidden width (circadian)")
    grid.set_titles("{col_name}", size=8)
    ctx.save_figure(grid.figure, "cpc_width")
    long = frame.melt(id_vars=["task", "model", "seed", "epoch"], value_vars=["task A", "task B"],
                      var_name="test set", value_name="accuracy")
    grid = sns.relplot(long, x="epoch", y="accuracy", hue="model", style="test set", col="task", col_wrap=2,
                       kind="line", errorbar=None, height=2.3, aspect=1.3, facet_kws={"sharey": True, "sharex": False})
    for ax, (label, _, _) in zip(grid.axes.flat, [(p[1], 0, 0) for p in profiles]):
        ax.axvline(phase_b.get(label, 0), color="0.5", linestyle=":", linewidth=1)
    grid.set_axis_labels("epoch", "test accuracy")
    grid.set_titles("{col_name}", size=8)
    ctx.save_figure(grid.figure, "cpc_accuracy")


__all__ = ["STUDIES", "figures", "paired_cells", "paired_table", "tables"]
