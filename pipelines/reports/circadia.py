"""Circadia (issue 6): nightly consolidation of a local LLM on a simulated user's days.

Tables: the ablations (held-out chat loss base -> final, capability harness, fact recall,
old-core forgetting, rollbacks, dreams, realised replay share); the full system night by night;
the harness pass rate per category per night. Figures: held-out loss per night per variant and
harness pass rate per category per night. The setting (model, nights, iterations) is read from
the run records, so the text says what was run.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

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
CATEGORIES = ("math", "reasoning", "factual", "format", "summarization", "style", "context")


def _val(ctx: ReportContext, variant: str, metric: str, what: str = "mean") -> float:
    try:
        return ctx.stat(STUDY, variant, metric, what)
    except KeyError:
        return float("nan")


def _setting(ctx: ReportContext) -> dict[str, Any]:
    recs = ctx.records_for(STUDY)
    rec = recs[0]
    night = rec["info"]["night_config"]
    src = rec["info"].get("model_source") or {}
    source = str(src.get("source", rec["info"]["model"]))
    model = "SmolLM2-135M-Instruct" if "smollm2" in source.lower() and "135" in source.lower() else source.split("/")[-1].replace("hub:", "")
    return {
        "model": model,
        "nights": rec["info"]["nights"],
        "seeds": len({r["seed"] for r in recs}),
        "device": rec["device"].split(":")[0],
        "iters": night["train"]["iters"],
        "batch": night["train"]["batch_size"],
        "lr": night["train"]["lr"],
        "rank": night["train"]["lora_rank"],
        "replay": night["replay_fraction"],
        "bursts": night["dreams"]["bursts"],
        "dream_temp": night["dreams"]["temperature"],
        "harness_items": sum(1 for _ in (rec["info"]["records"][0]["pre"] or {}).get("harness_per_category", {})) *
                         (night["eval"]["harness_per_category"] or 3),
        "heldout_fraction": night["eval"]["heldout_fraction"],
        "threshold": night["rollback"]["max_capability_drop"],
        "n_heldout": rec["info"]["n_heldout_final"],
        "store": night["store"],
    }


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
    m(("circadia", "harness", "items"), s["harness_items"], "d", source="circadia harness items per evaluation")
    m(("circadia", "heldout", "pct"), 100 * s["heldout_fraction"], ".0f", source="circadia night.eval.heldout_fraction x 100")
    m(("circadia", "heldout", "n"), s["n_heldout"], "d", source=f"{src}: held-out chats after the last day")
    m(("circadia", "threshold"), s["threshold"], ".2f", source="circadia night.rollback.max_capability_drop")
    pub = ctx.published("circadia")
    m(("circadia", "published", "loss", "drop", "pct"), 100 * pub["loss_drop"], ".0f", source="published.yaml circadia.loss_drop x 100")
    m(("circadia", "published", "regressions"), pub["harness_regressions"], "d", source="published.yaml circadia.harness_regressions")

    # headline numbers of the full system
    f = "full"
    for metric, fmt in (("heldout_loss_base", ".3f"), ("heldout_loss_final", ".3f"), ("harness_base", ".2f"),
                        ("harness_final", ".2f"), ("fact_recall", ".2f"), ("forgetting", "+.4f"), ("rollbacks", ".1f"),
                        ("dream_valid_rate", ".2f"), ("replay_fraction", ".2f"), ("train_tokens_per_s", ",.0f"),
                        ("night_seconds", ".1f"), ("secrets_redacted", ".0f"), ("stored_turns", ".1f")):
        m(("circadia", "full", metric), _val(ctx, f, metric), fmt, source=f"{ctx.profile}:circadia/full/{metric} mean")
    base, final = _val(ctx, f, "heldout_loss_base"), _val(ctx, f, "heldout_loss_final")
    m(("circadia", "full", "heldout", "change", "pct"), 100 * (final - base) / base if base else float("nan"), "+.1f",
      source="circadia/full: (heldout_loss_final - heldout_loss_base) / heldout_loss_base x 100")
    m(("circadia", "norouting", "fact", "recall"), _val(ctx, "no-routing", "fact_recall"), ".2f",
      source=f"{ctx.profile}:circadia/no-routing/fact_recall mean")
    m(("circadia", "noreplay", "forgetting"), _val(ctx, "no-replay", "forgetting"), "+.4f",
      source=f"{ctx.profile}:circadia/no-replay/forgetting mean")
    m(("circadia", "norollback", "harness", "final"), _val(ctx, "no-rollback", "harness_final"), ".2f",
      source=f"{ctx.profile}:circadia/no-rollback/harness_final mean")

    _ablation_table(ctx)
    _nights_table(ctx)
    _category_table(ctx)


def _ablation_table(ctx: ReportContext) -> None:
    rows, frame = [], []
    for variant, label in VARIANTS:
        if math.isnan(_val(ctx, variant, "heldout_loss_final")):
            continue
        p = ("circadia", "abl", variant)

        def cell(metric: str, fmt: str, p=p, variant=variant) -> str:
            return ctx.macro((*p, metric), _val(ctx, variant, metric), fmt, source=f"{ctx.profile}:circadia/{variant}/{metric} mean")

        loss = ctx.mean_pm((*p, "heldout"), STUDY, variant, "heldout_loss_final")
        rows.append([label, cell("heldout_loss_delta", "+.3f"), loss, cell("harness_final", ".2f"), cell("harness_delta", "+.2f"),
                     cell("fact_recall", ".2f"), cell("forgetting", "+.4f"), cell("rollbacks", ".1f"),
                     cell("dream_valid_rate", ".2f"), cell("replay_fraction", ".2f")])
        frame.append({"variant": variant, **{k: _val(ctx, variant, k) for k in (
            "heldout_loss_base", "heldout_loss_final", "heldout_loss_delta", "harness_base", "harness_final", "harness_delta",
            "fact_recall", "stored_recall", "old_core_loss_base", "old_core_loss_final", "forgetting", "rollbacks",
            "would_roll_back", "dreams_valid", "dreams_invalid", "dream_valid_rate", "replay_fraction",
            "train_tokens_per_s", "night_seconds")}})
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


def _history(ctx: ReportContext, variant: str) -> pd.DataFrame:
    rows = []
    for r in ctx.records_for(STUDY, variant):
        for h in r["history"]:
            rows.append({"seed": r["seed"], **h})
    return pd.DataFrame(rows)


def _nights_table(ctx: ReportContext) -> None:
    h = _history(ctx, "full")
    if h.empty:
        return
    rows, frame = [], []
    cols = ("heldout_pre", "heldout_in_use", "harness_in_use", "old_core_in_use", "fact_recall", "dreams_valid", "seconds")
    for night, g in h.groupby("night"):
        vals = {c: float(pd.to_numeric(g[c], errors="coerce").mean()) for c in cols}
        accepted = float((g["status"] == "accepted").mean())
        p = ("circadia", "night", str(int(night)))
        fmt = {"heldout_pre": ".3f", "heldout_in_use": ".3f", "harness_in_use": ".2f", "old_core_in_use": ".4f",
               "fact_recall": ".2f", "dreams_valid": ".1f", "seconds": ".1f"}
        cells = [ctx.macro((*p, c), vals[c], fmt[c], source=f"{ctx.profile}:circadia/full history night {night} {c} mean")
                 for c in cols]
        acc = ctx.macro((*p, "accepted"), accepted, ".2f", source=f"{ctx.profile}:circadia/full history night {night} share accepted")
        rows.append([str(int(night)), *cells[:5], acc, *cells[5:]])
        frame.append({"night": int(night), **vals, "accepted": accepted})
    ctx.write_csv("circadia_nights", pd.DataFrame(frame))
    ctx.write_table("circadia_nights", latex_table(
        ["Night", "Loss before", "Loss after", "Harness", "Old-core loss", "Fact recall", "Accepted", "Dreams ok", "Seconds"],
        rows,
        caption=("The full system night by night (mean over seeds). Loss before/after: held-out chat loss of the model "
                 "in use before the night and after its morning decision (after = before when it rolled back); the "
                 "held-out set grows by each day's held-out chats."),
        label="tab:circadia-nights",
        align="rcccccccc",
        size="\\footnotesize",
    ))


def _category_table(ctx: ReportContext) -> None:
    h = _history(ctx, "full")
    if h.empty:
        return
    rows, frame = [], []
    nights = sorted(h["night"].unique())
    for cat in CATEGORIES:
        col = f"harness_in_use_{cat}"
        b = _val(ctx, "full", f"harness_base_{cat}")
        cells = [ctx.macro(("circadia", "cat", cat, "base"), b, ".2f", source=f"{ctx.profile}:circadia/full/harness_base_{cat} mean")]
        rec = {"category": cat, "base": b}
        for n in nights:
            v = float(pd.to_numeric(h.loc[h["night"] == n, col], errors="coerce").mean()) if col in h else float("nan")
            cells.append(ctx.macro(("circadia", "cat", cat, "night", str(int(n))), v, ".2f",
                                   source=f"{ctx.profile}:circadia/full history night {n} {col} mean"))
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


def figures(ctx: ReportContext) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns

    rows = []
    for variant, label in VARIANTS:
        for r in ctx.records_for(STUDY, variant):
            first = r["history"][0] if r["history"] else None
            if first and first.get("heldout_pre") is not None:
                rows.append({"variant": label, "night": 0, "loss": first["heldout_pre"], "seed": r["seed"]})
            for h in r["history"]:
                rows.append({"variant": label, "night": h["night"], "loss": h["heldout_in_use"], "seed": r["seed"]})
    if rows:
        fig, ax = plt.subplots(figsize=(4.8, 3.0))
        sns.lineplot(pd.DataFrame(rows), x="night", y="loss", hue="variant", errorbar=("ci", 95), marker="o", ax=ax)
        ax.set_xlabel("night (0 = before the first)")
        ax.set_ylabel("held-out chat loss (nats/token)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ctx.save_figure(fig, "circadia_heldout")

    h = _history(ctx, "full")
    if not h.empty:
        rows = []
        for r in ctx.records_for(STUDY, "full"):
            for cat in CATEGORIES:
                rows.append({"category": cat, "night": 0, "pass": r["metrics"].get(f"harness_base_{cat}"), "seed": r["seed"]})
        for _, row in h.iterrows():
            for cat in CATEGORIES:
                rows.append({"category": cat, "night": row["night"], "pass": row.get(f"harness_in_use_{cat}"), "seed": row["seed"]})
        frame = pd.DataFrame(rows).dropna()
        pivot = frame.groupby(["category", "night"])["pass"].mean().unstack("night").reindex(list(CATEGORIES))
        fig, ax = plt.subplots(figsize=(4.8, 3.0))
        sns.heatmap(pivot, vmin=0, vmax=1, annot=True, fmt=".2f", cmap="viridis", cbar=False, ax=ax)
        ax.set_xlabel("night (0 = base model)")
        ax.set_ylabel("")
        ctx.save_figure(fig, "circadia_harness")
