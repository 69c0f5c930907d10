"""Vision heads (issue 3): backprop, predictive coding and circadian heads on cached backbone features.

Tables: the three heads (accuracy, cross-entropy, parameters; training speed and inference latency
from the records' timings, never their metrics) beside the prototype's published CIFAR-100 row;
the circadian ablations with each one's paired difference to the full circadian head; every
paired comparison the text states. Records are read through the study's contract. Figures: test
accuracy per epoch, hidden width over sleeps, speed (all with the tables' t-interval).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from circadian_core.stats import t_errorbar
from circadian_vision.studies.heads import CONTRACT
from pipelines.reports import ReportContext, latex_table
from pipelines.reports.cpc import paired_cells, paired_table

STUDIES = ("heads", "heads_ablation")
ORDER = 20

HEADS = (
    ("backprop", "Backprop (linear)", "backprop"),
    ("predictive-coding", "Predictive coding", "predictive_coding"),
    ("circadian", "Circadian PC", "circadian"),
)
ABLATIONS = (
    ("no-split", "without split"),
    ("no-prune", "without prune"),
    ("no-rollback", "without rollback"),
    ("no-replay", "without replay"),
    ("no-reward", "without reward"),
    ("no-spread-gate", "without spread gate"),
    ("fixed-trigger", "fixed trigger"),
)
PAIRS = (("circadian", "predictive-coding"), ("circadian", "backprop"), ("predictive-coding", "backprop"))

DATASETS = {"digits": "digits", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
BACKBONES = {"digits_cnn": "a tiny CNN", "resnet18": "ResNet-18", "resnet50": "ResNet-50"}


def _setting(ctx: ReportContext) -> dict[str, Any]:
    """What was run, read through the contract from the heads records (the same for every cell)."""
    recs = ctx.parsed(CONTRACT, "heads")
    rec = recs[0]
    spec = rec.info.features["spec"]
    source = spec["source"]["backbone"]
    name = spec["backbone"]["name"]
    if name.startswith("resnet"):
        weights = "ImageNet" if source.get("weights") == "imagenet" else "random"
    else:
        weights = "first Split-Digits task"
    dataset = spec["dataset"].get("name", "?")
    return {
        # the prototype's own setting: CIFAR-100 on ImageNet ResNet-50 features (its published row)
        "proto": dataset == "cifar100" and name == "resnet50" and weights == "ImageNet",
        "dataset": DATASETS.get(dataset, dataset),
        "backbone": BACKBONES.get(name, name),
        "weights": weights,
        "train": rec.info.split["train"],
        "holdout": rec.info.split["holdout"],
        "test": rec.info.split["test"],
        "epochs": rec.settings.epochs,
        "seeds": len({r.seed for r in recs}),
        "device": rec.raw["device"].split(":")[0],
    }


def _timing(ctx: ReportContext, study: str, variant: str, key: str) -> float:
    """Mean over seeds of one wall-clock timing (the records' ``timings``; NaN where absent)."""
    values = [r.timings[key] for r in ctx.parsed(CONTRACT, study, variant) if key in r.timings]
    return float(np.mean(values)) if values else float("nan")


def tables(ctx: ReportContext) -> None:
    s = _setting(ctx)
    src = "heads run records"
    ctx.macro(("heads", "dataset"), s["dataset"], source=f"{src}: features spec dataset")
    ctx.macro(("heads", "backbone"), s["backbone"], source=f"{src}: features spec backbone")
    ctx.macro(("heads", "weights"), s["weights"], source=f"{src}: backbone weights")
    ctx.macro(("heads", "train", "size"), s["train"], "d", source=f"{src}: training rows (holdout excluded)")
    ctx.macro(("heads", "holdout", "size"), s["holdout"], "d", source=f"{src}: held-out training rows")
    ctx.macro(("heads", "test", "size"), s["test"], "d", source=f"{src}: test rows")
    ctx.macro(("heads", "epochs"), s["epochs"], "d", source="heads config epochs")
    ctx.macro(("heads", "seeds"), s["seeds"], "d", source=f"{src}: number of seeds")
    ctx.macro(("heads", "device"), s["device"], source=f"{src}: device")
    ctx.macro(("heads", "protocol", "verdict"),
              "the setting of the prototype, so its published accuracies are set beside ours in Table~\\ref{tab:heads}"
              if s["proto"] else "not the setting of the prototype (CIFAR-100 on ImageNet ResNet-50 features), so its "
              "published accuracies are not comparable with these and are quoted only in the paper profile",
              source=f"{src}: dataset and backbone against the prototype's")
    ctx.macro(("heads", "sleep", "overhead", "pct"), 100 * _timing(ctx, "heads", "circadian", "sleep_overhead"),
              ".1f", source=f"{ctx.profile}:heads/circadian timings.sleep_overhead mean x 100")
    _heads_table(ctx, s["proto"])
    _ablation_table(ctx)


def _heads_table(ctx: ReportContext, proto: bool) -> None:
    published = ctx.published("cpc.cifar100_accuracy")
    rows, frame = [], []
    for variant, label, key in HEADS:
        if not ctx.records_for("heads", variant):
            continue
        p = ("heads", variant)
        acc = ctx.mean_pm((*p, "accuracy"), "heads", variant, "accuracy")
        ce = ctx.mean_pm((*p, "ce"), "heads", variant, "cross_entropy")
        sps = ctx.macro((*p, "sps"), _timing(ctx, "heads", variant, "train_sps"), ",.0f",
                        source=f"{ctx.profile}:heads/{variant} timings.train_sps mean")
        p95 = ctx.macro((*p, "pninetyfive"), _timing(ctx, "heads", variant, "infer_p95_ms"), ".3f",
                        source=f"{ctx.profile}:heads/{variant} timings.infer_p95_ms mean")
        params = ctx.macro((*p, "params"), ctx.val("heads", variant, "params"), ",.0f",
                           source=f"{ctx.profile}:heads/{variant}/params mean")
        pub = ctx.macro(("heads", "published", variant), published[key], ".3f",
                        source="published.yaml cpc.cifar100_accuracy (prototype, CIFAR-100, ResNet-50)")
        rows.append([label, acc, ce, sps, p95, params, *([pub] if proto else [])])
        frame.append({"head": variant, **{m: ctx.val("heads", variant, m) for m in ("accuracy", "cross_entropy", "params")},
                      **{t: _timing(ctx, "heads", variant, t) for t in ("train_sps", "infer_p50_ms", "infer_p95_ms")},
                      "published_cifar100_accuracy": published[key]})
    ctx.write_csv("heads_results", pd.DataFrame(frame))
    ctx.write_table("heads_results", latex_table(
        ["Head", "Accuracy", "Cross-entropy", "Train/s", "p95 (ms)", "Params", *(["Published"] if proto else [])], rows,
        caption=("Heads on cached frozen-backbone features (\\mbox{\\headsDataset} on \\mbox{\\headsBackbone}): "
                 "mean $\\pm$ 95\\% t-interval over \\headsSeeds{} seeds."
                 + (" \\emph{Published}: the prototype's CIFAR-100 accuracy with ImageNet ResNet-50 features, the "
                    "same setting (one run)." if proto else "")),
        label="tab:heads", align="lccccc" + ("c" if proto else ""), size="\\footnotesize",
        notes="Train/s: head training samples per second on cached features; p95: latency of one forward pass of "
              "the head on a batch of cached features (both wall-clock timings of the runs, means over seeds). "
              "Params: head parameters at the end of training."))
    rows = []
    for a, b in PAIRS:
        if ctx.records_for("heads", a) and ctx.records_for("heads", b):
            d = ctx.paired("heads", a, b, "accuracy")
            la, lb = (dict((v, lab) for v, lab, _ in HEADS)[x] for x in (a, b))
            rows.append([f"{la} $-$ {lb}", *paired_cells(ctx, ("heads", a, "minus", b), d,
                                                           f"{ctx.profile}:heads {a} - {b} accuracy")])
    paired_table(ctx, "heads_paired", rows, caption="Heads: paired differences of the test accuracy.",
                 label="tab:heads-paired", first=("Comparison",))


def _ablation_table(ctx: ReportContext) -> None:
    if not ctx.records_for("heads", "circadian"):
        return
    rows, frame = [], []
    entries = [("heads", "circadian", "full circadian")] + [
        ("heads_ablation", v, label) for v, label in ABLATIONS]
    for study, variant, label in entries:
        if not ctx.records_for(study, variant):
            continue
        p = ("heads", "abl", variant)
        acc = ctx.mean_pm((*p, "accuracy"), study, variant, "accuracy")
        if study == "heads":
            diff = ["---", "---", "---", "---"]
        else:
            d = ctx.paired(study, variant, "circadian", "accuracy", study_b="heads")
            cells = paired_cells(ctx, (*p, "minus", "full"), d, f"{ctx.profile}:{study}/{variant} - heads/circadian accuracy")
            diff = cells
            frame_d = {"delta_vs_full": d.mean, "delta_low": d.low, "delta_high": d.high, "p": d.p_value}
        counts = [ctx.macro((*p, m), ctx.val(study, variant, m), fmt, source=f"{ctx.profile}:{study}/{variant}/{m} mean")
                  for m, fmt in (("sleeps", ".1f"), ("splits", ".1f"), ("prunes", ".1f"), ("rollbacks", ".1f"),
                                 ("hidden_end", ".1f"), ("distinct_end", ".1f"))]
        rows.append([label, acc, *diff, *counts])
        frame.append({"variant": variant, "accuracy": ctx.val(study, variant, "accuracy"),
                      **(frame_d if study != "heads" else {}),
                      **{m: ctx.val(study, variant, m) for m in ("sleeps", "splits", "prunes", "rollbacks", "hidden_end",
                                                                 "distinct_end")}})
    if ctx.records_for("heads_ablation", "no-spread-gate"):
        def steps(study: str, variant: str) -> dict[int, list[int]]:
            return {r.seed: [e["step"] for e in r.info.events] for r in ctx.parsed(CONTRACT, study, variant)}

        same = steps("heads", "circadian") == steps("heads_ablation", "no-spread-gate")
        ctx.macro(("heads", "spread", "gate", "verdict"),
                  "the head slept at exactly the same steps without the gate, so the gate never decided when it slept"
                  if same else "without the gate the head slept at other steps, so the gate did decide some sleeps",
                  source=f"{ctx.profile}: sleep steps of heads/circadian vs heads_ablation/no-spread-gate, per seed")
    ctx.write_csv("heads_ablation", pd.DataFrame(frame))
    ctx.write_table("heads_ablation", latex_table(
        ["Circadian head", "Accuracy", "$\\Delta$ vs full", "95\\% CI", "$p$", "$n$", "Sleeps", "Splits", "Prunes",
         "Rollb.", "Width", "Distinct"], rows,
        caption=("Circadian head ablations, each switching one mechanism off: test accuracy (mean $\\pm$ 95\\% "
                 "t-interval), its difference to the full circadian head paired over seeds (same seed, same data "
                 "order) with its 95\\% t-interval and the paired t-test's $p$, and per run the mean sleeps, "
                 "committed splits and prunes, rollbacks, final width and distinct units (incoming weights with "
                 "cosine $>0.999$ counted once)."),
        label="tab:heads-ablation", align="lccccccccccc", size="\\scriptsize\\setlength{\\tabcolsep}{2pt}"))


# ---- figures ------------------------------------------------------------------------------
def figures(ctx: ReportContext) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns

    rows = [{"head": label, "epoch": e, "accuracy": a, "seed": r.seed}
            for variant, label, _ in HEADS for r in ctx.parsed(CONTRACT, "heads", variant)
            for e, a in zip(r.history["epoch"], r.history["accuracy"])]
    if rows:
        fig, ax = plt.subplots(figsize=(4.6, 3.0))
        sns.lineplot(pd.DataFrame(rows), x="epoch", y="accuracy", hue="head", errorbar=t_errorbar, ax=ax)
        ax.set_ylabel("test accuracy")
        ctx.save_figure(fig, "heads_accuracy")

    rows = []
    entries = [("heads", "circadian", "full")] + [("heads_ablation", v, v) for v, _ in ABLATIONS]
    for study, variant, label in entries:
        for r in ctx.parsed(CONTRACT, study, variant):
            rows.append({"variant": label, "sleep": 0, "hidden": r.metrics["hidden_start"], "seed": r.seed})
            for i, ev in enumerate(r.info.events, start=1):
                rows.append({"variant": label, "sleep": i, "hidden": ev["hidden_after"], "seed": r.seed})
    if rows:
        fig, ax = plt.subplots(figsize=(4.6, 3.0))
        sns.lineplot(pd.DataFrame(rows), x="sleep", y="hidden", hue="variant", errorbar=None, ax=ax, marker="o")
        ax.set_ylabel("hidden width")
        ax.set_xlabel("sleep")
        ax.legend(fontsize=6)
        ctx.save_figure(fig, "heads_width")

    rows = [{"head": label, "seed": r.seed, "train samples/s": r.timings.get("train_sps"),
             "p95 latency (ms)": r.timings.get("infer_p95_ms")}
            for variant, label, _ in HEADS for r in ctx.parsed(CONTRACT, "heads", variant)]
    if rows:
        frame = pd.DataFrame(rows)
        fig, axes = plt.subplots(1, 2, figsize=(6.4, 2.6))
        sns.barplot(frame, x="head", y="train samples/s", errorbar=t_errorbar, ax=axes[0])
        sns.barplot(frame, x="head", y="p95 latency (ms)", errorbar=t_errorbar, ax=axes[1])
        for ax in axes:
            ax.set_xlabel("")
            ax.tick_params(axis="x", labelrotation=20)
        fig.tight_layout()
        ctx.save_figure(fig, "heads_speed")
