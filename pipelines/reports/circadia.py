"""Circadia (issue 6): nightly consolidation of a local LLM on a simulated user's days.

Tables: the ablations (held-out chat loss base -> final, capability harness, fact recall,
old-core forgetting, rollbacks, dreams, realised replay share); the full system night by night;
the harness pass rate per category per night. Figures: held-out loss per night per variant and
harness pass rate per category per night. Records are read only through the study's contract
(``circadia.studies.CONTRACT``: typed settings and info, every night a ``NightRecord``), so the
text says what was run; every comparison the text states is a paired difference over seeds with
its 95% CI and paired t-test.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from circadia.evaluation import HARNESS_CATEGORIES
from circadia.sleep.record import NightRecord, NightStatus
from circadia.studies import CONTRACT
from circadian_core.stats import paired_difference, t_errorbar
from pipelines.reports import ReportContext, latex_table

STUDIES = ("circadia",)
ORDER = 60
STUDY = "circadia"
VARIANTS = (
    ("full", "full system"),
    ("no-replay", "no old-core replay"),
    ("no-dreams", "no dreams"),
    ("no-routing", "no routing (all to LoRA)"),
    ("no-rollback", "no rollback"),
)


def _model_name(source: dict[str, Any] | None, folder: str) -> str:
    text = str((source or {}).get("source", folder))
    if "smollm2" in text.lower() and "135" in text.lower():
        return "SmolLM2-135M-Instruct"
    return text.split("/")[-1].replace("hub:", "")


def _setting(ctx: ReportContext) -> dict[str, Any]:
    recs = ctx.parsed(CONTRACT, STUDY)
    rec = recs[0]
    night, info = rec.settings.night, rec.info
    return {
        "model": _model_name(info.model_source, info.model),
        "nights": info.nights,
        "seeds": len({r.seed for r in recs}),
        "device": str(rec.raw.get("device", "")).split(":")[0],
        "iters": night.train.iters,
        "batch": night.train.batch_size,
        "lr": night.train.lr,
        "rank": night.train.lora_rank,
        "replay": night.replay_fraction,
        "bursts": night.dreams.bursts,
        "dream_temp": night.dreams.temperature,
        "harness_items": info.harness_items,
        "heldout_fraction": night.eval.heldout_fraction,
        "threshold": night.rollback.max_capability_drop,
        "n_heldout": info.n_heldout_final,
        "store": night.store,
    }


def _timing(ctx: ReportContext, variant: str, key: str) -> float:
    """Mean over seeds of one timing of the cells (seconds, tokens/s): never a metric."""
    vals = [r.timings[key] for r in ctx.parsed(CONTRACT, STUDY, variant) if key in r.timings]
    return sum(vals) / len(vals) if vals else float("nan")


def tables(ctx: ReportContext) -> None:
    s = _setting(ctx)
    src = "circadia run records"
    m = ctx.macro
    m(("circadia", "model"), s["model"], source=f"{src}: model")
    m(("circadia", "nights"), s["nights"], "d", source=f"{src}: nights")
    m(("circadia", "seeds"), s["seeds"], "d", source=f"{src}: seeds")
    m(("circadia", "device"), s["device"], source=f"{src}: device")
    m(("circadia", "iters"), s["iters"], "d", source="circadia night.train.iters")
    m(("circadia", "batch"), s["batch"], "d", source="circadia night.train.batch_size")
    m(("circadia", "lr"), f"{s['lr']:.0e}".replace("e-0", "e-"), source="circadia night.train.lr")
    m(("circadia", "rank"), s["rank"], "d", source="circadia night.train.lora_rank")
    m(("circadia", "replay", "pct"), 100 * s["replay"], ".0f", source="circadia night.replay_fraction x 100")
    m(("circadia", "bursts"), s["bursts"], "d", source="circadia night.dreams.bursts")
    m(("circadia", "dream", "temp"), s["dream_temp"], ".1f", source="circadia night.dreams.temperature")
    m(("circadia", "harness", "items"), s["harness_items"], "d", source=f"{src}: info.harness_items")
    m(("circadia", "heldout", "pct"), 100 * s["heldout_fraction"], ".0f", source="circadia night.eval.heldout_fraction x 100")
    m(("circadia", "heldout", "n"), s["n_heldout"], "d", source=f"{src}: held-out chats after the last day")
    m(("circadia", "threshold"), s["threshold"], ".2f", source="circadia night.rollback.max_capability_drop")
    pub = ctx.published("circadia")
    m(("circadia", "published", "loss", "drop", "pct"), 100 * pub["loss_drop"], ".0f", source="published.yaml circadia.loss_drop x 100")
    m(("circadia", "published", "regressions"), pub["harness_regressions"], "d", source="published.yaml circadia.harness_regressions")

    _headlines(ctx)
    _comparisons(ctx)
    _ablation_table(ctx)
    _nights_table(ctx)
    _category_table(ctx)


def _headlines(ctx: ReportContext) -> None:
    f = "full"
    for metric, fmt in (("heldout_loss_base", ".3f"), ("heldout_loss_final", ".3f"), ("harness_base", ".2f"),
                        ("harness_final", ".2f"), ("fact_recall", ".2f"), ("forgetting", "+.4f"), ("rollbacks", ".1f"),
                        ("dream_valid_rate", ".2f"), ("replay_fraction", ".2f"), ("secrets_redacted", ".0f"),
                        ("stored_turns", ".1f")):
        ctx.macro(("circadia", "full", metric), ctx.val(STUDY, f, metric), fmt, source=f"{ctx.profile}:circadia/full/{metric} mean")
    base, final = ctx.val(STUDY, f, "heldout_loss_base"), ctx.val(STUDY, f, "heldout_loss_final")
    ctx.macro(("circadia", "full", "heldout", "change", "pct"), 100 * (final - base) / base if base else float("nan"), "+.1f",
              source="circadia/full: (heldout_loss_final - heldout_loss_base) / heldout_loss_base x 100")
    ctx.macro(("circadia", "norouting", "fact", "recall"), ctx.val(STUDY, "no-routing", "fact_recall"), ".2f",
              source=f"{ctx.profile}:circadia/no-routing/fact_recall mean")
    ctx.macro(("circadia", "noreplay", "forgetting"), ctx.val(STUDY, "no-replay", "forgetting"), "+.4f",
              source=f"{ctx.profile}:circadia/no-replay/forgetting mean")
    ctx.macro(("circadia", "norollback", "harness", "final"), ctx.val(STUDY, "no-rollback", "harness_final"), ".2f",
              source=f"{ctx.profile}:circadia/no-rollback/harness_final mean")
    # timings (seconds, tokens/s): from the records' timings, never from metrics
    ctx.macro(("circadia", "full", "night", "seconds"), _timing(ctx, f, "night_seconds"), ".1f",
              source=f"{ctx.profile}:circadia/full timings.night_seconds mean")
    ctx.macro(("circadia", "full", "train", "tokens", "per", "s"), _timing(ctx, f, "train_tokens_per_s"), ",.0f",
              source=f"{ctx.profile}:circadia/full timings.train_tokens_per_s mean")


COMPARISONS = (
    # (macro prefix, variant a, variant b, metric, fmt): what results_circadia.tex states
    (("circadia", "cmp", "norollback", "harness"), "no-rollback", "full", "harness_final", ".2f"),
    (("circadia", "cmp", "noreplay", "forgetting"), "no-replay", "full", "forgetting", ".4f"),
    (("circadia", "cmp", "norouting", "recall"), "no-routing", "full", "fact_recall", ".2f"),
    (("circadia", "cmp", "nodreams", "heldout"), "no-dreams", "full", "heldout_loss_final", ".3f"),
)


def _comparisons(ctx: ReportContext) -> None:
    """Paired differences (same seed = same days, same data order) for every comparison the text makes."""
    full = "full"
    for prefix, metric_a, metric_b, fmt in ((("circadia", "cmp", "full", "heldout"), "heldout_loss_final", "heldout_loss_base", ".3f"),
                                            (("circadia", "cmp", "full", "harness"), "harness_final", "harness_base", ".2f")):
        d = paired_difference(ctx.by_seed(STUDY, full, metric_a), ctx.by_seed(STUDY, full, metric_b))
        _paired_pm(ctx, prefix, d, fmt, source=f"{ctx.profile}:circadia/full {metric_a} - {metric_b}")
    for prefix, a, b, metric, fmt in COMPARISONS:
        _paired_pm(ctx, prefix, ctx.paired(STUDY, a, b, metric), fmt, source=f"{ctx.profile}:circadia {a} - {b} {metric}")


def _paired_pm(ctx: ReportContext, prefix: tuple[str, ...], d, fmt: str, source: str) -> None:
    """``ctx.paired_pm``, and n/a for the CI and p macros when fewer than two seeds pair up
    (the text quotes them in every profile)."""
    ctx.paired_pm(prefix, d, fmt, source=source)
    if d.n < 2:
        for part in ("low", "high", "p"):
            ctx.macro((*prefix, part), float("nan"), fmt, source=f"{source}: fewer than two paired seeds")
        ctx.macro((*prefix, "n"), d.n, "d", source=f"{source} pairs")


def _ablation_table(ctx: ReportContext) -> None:
    rows, frame = [], []
    for variant, label in VARIANTS:
        if math.isnan(ctx.val(STUDY, variant, "heldout_loss_final")):
            continue
        p = ("circadia", "abl", variant)

        def cell(metric: str, fmt: str, p=p, variant=variant) -> str:
            return ctx.number_or((*p, metric), ctx.val(STUDY, variant, metric), fmt,
                                 source=f"{ctx.profile}:circadia/{variant}/{metric} mean", missing="n/a")

        loss = ctx.mean_pm((*p, "heldout"), STUDY, variant, "heldout_loss_final")
        rows.append([label, cell("heldout_loss_delta", "+.3f"), loss, cell("harness_final", ".2f"), cell("harness_delta", "+.2f"),
                     cell("fact_recall", ".2f"), cell("forgetting", "+.4f"), cell("rollbacks", ".1f"),
                     cell("dream_valid_rate", ".2f"), cell("replay_fraction", ".2f")])
        frame.append({"variant": variant, **{k: ctx.val(STUDY, variant, k) for k in (
            "heldout_loss_base", "heldout_loss_final", "heldout_loss_delta", "harness_base", "harness_final", "harness_delta",
            "fact_recall", "stored_recall", "old_core_loss_base", "old_core_loss_final", "forgetting", "rollbacks",
            "would_roll_back", "dreams_valid", "dreams_invalid", "dream_valid_rate", "replay_fraction")},
            "night_seconds": _timing(ctx, variant, "night_seconds"),
            "train_tokens_per_s": _timing(ctx, variant, "train_tokens_per_s")})
    if not rows:
        return
    ctx.write_csv("circadia_ablation", pd.DataFrame(frame))
    ctx.write_table("circadia_ablation", latex_table(
        ["Variant", "$\\Delta$ loss", "Held-out loss", "Harness", "$\\Delta$ harness", "Fact recall", "Forgetting",
         "Rollbacks", "Dreams ok", "Replay"],
        rows,
        caption=("Circadia after \\circadiaNights{} simulated days on \\mbox{\\circadiaModel} (mean over \\circadiaSeeds{} "
                 "seeds; held-out loss with 95\\% CI). $\\Delta$ loss: final minus base model on the same held-out chats."),
        label="tab:circadia-ablation",
        align="lccccccccc",
        notes=("Held-out loss: mean NLL per assistant token on chats never trained on. Harness: capability pass rate "
               "of the model in use after the last night. Fact recall: share of fact probes whose answer is in the top "
               "retrieved turns. Forgetting: old-core loss, final minus base (positive = forgot). Dreams ok: share of "
               "dreams that parsed. Replay: realised old-core share of the training examples."),
        size="\\scriptsize",
    ))


def nights_frame(ctx: ReportContext, variant: str) -> pd.DataFrame:
    """One row per (seed, night) of ``variant`` from the typed night records."""
    rows = []
    for rec in ctx.parsed(CONTRACT, STUDY, variant):
        for night in rec.info.night_records:
            rows.append({"seed": rec.seed, **_night_row(night)})
    return pd.DataFrame(rows)


def _night_row(n: NightRecord) -> dict[str, Any]:
    use = n.in_use
    row: dict[str, Any] = {
        "night": n.night,
        "accepted": float(n.status is NightStatus.ACCEPTED),
        "heldout_pre": n.pre.heldout_loss if n.pre else None,
        "heldout_in_use": use.heldout_loss if use else None,
        "harness_in_use": use.harness if use else None,
        "old_core_in_use": use.old_core_loss if use else None,
        "fact_recall": n.recall.probes.recall if n.recall else None,
        "dreams_valid": n.dreams.valid if n.dreams else 0,
        "seconds": n.timings.total,
    }
    for cat in HARNESS_CATEGORIES:
        row[f"harness_in_use_{cat}"] = (use.harness_per_category.get(cat) if use else None)
    return row


def _nights_table(ctx: ReportContext) -> None:
    h = nights_frame(ctx, "full")
    if h.empty:
        return
    rows, frame = [], []
    cols = ("heldout_pre", "heldout_in_use", "harness_in_use", "old_core_in_use", "fact_recall", "accepted", "dreams_valid", "seconds")
    fmt = {"heldout_pre": ".3f", "heldout_in_use": ".3f", "harness_in_use": ".2f", "old_core_in_use": ".4f",
           "fact_recall": ".2f", "accepted": ".2f", "dreams_valid": ".1f", "seconds": ".1f"}
    for night, g in h.groupby("night"):
        vals = {c: float(pd.to_numeric(g[c], errors="coerce").mean()) for c in cols}
        p = ("circadia", "night", str(int(night)))
        cells = [ctx.macro((*p, c), vals[c], fmt[c], source=f"{ctx.profile}:circadia/full night {night} {c} mean over seeds")
                 for c in cols]
        rows.append([str(int(night)), *cells])
        frame.append({"night": int(night), **vals})
    ctx.write_csv("circadia_nights", pd.DataFrame(frame))
    ctx.write_table("circadia_nights", latex_table(
        ["Night", "Loss before", "Loss after", "Harness", "Old-core loss", "Fact recall", "Accepted", "Dreams ok", "Seconds"],
        rows,
        caption=("The full system night by night (mean over seeds). Loss before/after: held-out chat loss of the model "
                 "in use before the night and after its morning decision (after = before when it rolled back); the "
                 "held-out set grows by each day's held-out chats. Seconds: wall time of the night."),
        label="tab:circadia-nights",
        align="rcccccccc",
        size="\\footnotesize",
    ))


def _category_table(ctx: ReportContext) -> None:
    h = nights_frame(ctx, "full")
    if h.empty:
        return
    rows, frame = [], []
    nights = sorted(h["night"].unique())
    for cat in HARNESS_CATEGORIES:
        col = f"harness_in_use_{cat}"
        b = ctx.val(STUDY, "full", f"harness_base_{cat}")
        cells = [ctx.macro(("circadia", "cat", cat, "base"), b, ".2f", source=f"{ctx.profile}:circadia/full/harness_base_{cat} mean")]
        rec = {"category": cat, "base": b}
        for n in nights:
            v = float(pd.to_numeric(h.loc[h["night"] == n, col], errors="coerce").mean())
            cells.append(ctx.macro(("circadia", "cat", cat, "night", str(int(n))), v, ".2f",
                                   source=f"{ctx.profile}:circadia/full night {n} {col} mean over seeds"))
            rec[f"night_{int(n)}"] = v
        rows.append([cat, *cells])
        frame.append(rec)
    ctx.write_csv("circadia_categories", pd.DataFrame(frame))
    ctx.write_table("circadia_categories", latex_table(
        ["Category", "Base", *[f"Night {int(n)}" for n in nights]],
        rows,
        caption="Capability harness pass rate per category: the base model and the model in use after each night (full system, mean over seeds).",
        label="tab:circadia-categories",
        align="l" + "c" * (len(nights) + 1),
        size="\\footnotesize",
    ))


def heldout_frame(ctx: ReportContext) -> pd.DataFrame:
    """Held-out loss of the model in use per (variant, seed, night); night 0 is the base model."""
    rows = []
    for variant, label in VARIANTS:
        for rec in ctx.parsed(CONTRACT, STUDY, variant):
            nights = rec.info.night_records
            if nights and nights[0].pre is not None and nights[0].pre.heldout_loss is not None:
                rows.append({"variant": label, "night": 0, "loss": nights[0].pre.heldout_loss, "seed": rec.seed})
            for n in nights:
                use = n.in_use
                rows.append({"variant": label, "night": n.night, "loss": use.heldout_loss if use else None, "seed": rec.seed})
    return pd.DataFrame(rows)


def figures(ctx: ReportContext) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns

    frame = heldout_frame(ctx)
    if not frame.empty:
        fig, ax = plt.subplots(figsize=(6.4, 3.0))
        sns.lineplot(frame.dropna(), x="night", y="loss", hue="variant", errorbar=t_errorbar, marker="o", ax=ax)
        ax.set_xlabel("night (0 = before the first)")
        ax.set_ylabel("held-out chat loss (nats/token)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        # the legend beside the axes, never over the lines
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, title=None)
        ctx.save_figure(fig, "circadia_heldout")

    h = nights_frame(ctx, "full")
    if not h.empty:
        rows = []
        for rec in ctx.parsed(CONTRACT, STUDY, "full"):
            for cat in HARNESS_CATEGORIES:
                rows.append({"category": cat, "night": 0, "pass": rec.metrics.get(f"harness_base_{cat}"), "seed": rec.seed})
        for _, row in h.iterrows():
            for cat in HARNESS_CATEGORIES:
                rows.append({"category": cat, "night": row["night"], "pass": row.get(f"harness_in_use_{cat}"), "seed": row["seed"]})
        cats = pd.DataFrame(rows).dropna()
        pivot = cats.groupby(["category", "night"])["pass"].mean().unstack("night").reindex(list(HARNESS_CATEGORIES))
        fig, ax = plt.subplots(figsize=(4.8, 3.0))
        sns.heatmap(pivot, vmin=0, vmax=1, annot=True, fmt=".2f", cmap="viridis", cbar=False, ax=ax)
        ax.set_xlabel("night (0 = base model)")
        ax.set_ylabel("")
        ctx.save_figure(fig, "circadia_harness")
