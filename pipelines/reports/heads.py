"""Vision heads (issue 3): backprop, predictive coding and circadian heads on cached backbone features.

Tables: the three heads beside the prototype's published CIFAR-100 row, and the circadian
ablations. Figures: test accuracy per epoch, hidden width over sleeps, training/inference speed.
The setting (dataset, backbone, sizes, epochs) is read from the run records, so the text says
what was run: in ``mini`` digits features from a tiny CNN, not CIFAR-100.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipelines.reports import ReportContext, latex_table

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
    ("no-reward", "without reward modulation"),
    ("fixed-trigger", "fixed sleep trigger"),
)


DATASETS = {"digits": "digits", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
BACKBONES = {"digits_cnn": "a tiny CNN", "resnet18": "ResNet-18", "resnet50": "ResNet-50"}


def _setting(ctx: ReportContext) -> dict[str, Any]:
    """What was run, read from the heads records (the same for every cell of the study)."""
    recs = ctx.records_for("heads")
    rec = recs[0]
    spec = rec["info"]["features"]["spec"]
    source = spec["source"]["backbone"]
    name = spec["backbone"]["name"]
    return {
        "dataset": DATASETS.get(spec["dataset"].get("name"), spec["dataset"].get("name", "?")),
        "backbone": BACKBONES.get(name, name),
        "weights": "ImageNet" if source.get("weights") == "imagenet" and name.startswith("resnet") else (
            "random" if name.startswith("resnet") else "first Split-Digits task"),
        "image_size": spec["backbone"].get("image_size") or 0,
        "train": rec["info"]["split"]["train"],
        "holdout": rec["info"]["split"]["holdout"],
        "test": rec["info"]["split"]["test"],
        "epochs": rec["config"]["epochs"],
        "seeds": len({r["seed"] for r in recs}),
        "device": rec["device"].split(":")[0],
        "extract_rate": rec["info"]["features"]["extract"]["images_per_s"],
    }


def _val(ctx: ReportContext, study: str, variant: str, metric: str, what: str = "mean") -> float:
    try:
        return ctx.stat(study, variant, metric, what)
    except KeyError:
        return float("nan")


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
    ctx.macro(("heads", "extract", "rate"), s["extract_rate"], ",.0f",
              source="feature-cache artifact: backbone images/s (recorded in the heads records)")
    ctx.macro(("heads", "sleep", "overhead", "pct"), 100 * _val(ctx, "heads", "circadian", "sleep_overhead"), ".1f",
              source=f"{ctx.profile}:heads/circadian/sleep_overhead mean x 100")

    published = ctx.published("cpc.cifar100_accuracy")
    rows, frame = [], []
    for variant, label, key in HEADS:
        if np.isnan(_val(ctx, "heads", variant, "accuracy")):
            continue
        p = ("heads", variant)
        acc = ctx.mean_pm((*p, "accuracy"), "heads", variant, "accuracy")
        ce = ctx.mean_pm((*p, "ce"), "heads", variant, "cross_entropy")
        sps = ctx.macro((*p, "sps"), _val(ctx, "heads", variant, "train_sps"), ",.0f",
                        source=f"{ctx.profile}:heads/{variant}/train_sps mean")
        p95 = ctx.macro((*p, "pninetyfive"), _val(ctx, "heads", variant, "infer_p95_ms"), ".3f",
                        source=f"{ctx.profile}:heads/{variant}/infer_p95_ms mean")
        params = ctx.macro((*p, "params"), _val(ctx, "heads", variant, "params"), ",.0f",
                           source=f"{ctx.profile}:heads/{variant}/params mean")
        pub = ctx.macro(("heads", "published", variant), published[key], ".3f",
                        source="published.yaml cpc.cifar100_accuracy (prototype, CIFAR-100, ResNet-50)")
        rows.append([label, acc, ce, sps, p95, params, pub])
        frame.append({"head": variant, **{m: _val(ctx, "heads", variant, m) for m in
                                          ("accuracy", "cross_entropy", "train_sps", "infer_p50_ms", "infer_p95_ms", "params")},
                      "published_cifar100_accuracy": published[key]})
    ctx.write_csv("heads_results", pd.DataFrame(frame))
    ctx.write_table(
        "heads_results",
        latex_table(
            ["Head", "Accuracy", "Cross-entropy", "Train/s", "p95 (ms)", "Params", "Published"],
            rows,
            caption=(
                "Heads on cached frozen-backbone features (\\mbox{\\headsDataset} on \\mbox{\\headsBackbone}): "
                "mean $\\pm$ 95\\% CI over \\headsSeeds{} seeds. \\emph{Published}: the prototype's CIFAR-100 "
                "accuracy with ImageNet ResNet-50 features (one run), comparable only when this table comes from "
                "the paper profile."
            ),
            label="tab:heads",
            align="lcccccc",
            notes="Train/s: head training samples per second on cached features. p95: latency of one forward "
            "pass of the head on a batch of cached features. Params: head parameters at the end of training.",
            size="\\footnotesize",
        ),
    )
    _ablation_table(ctx)


def _ablation_table(ctx: ReportContext) -> None:
    rows, frame = [], []
    entries = [("heads", "circadian", "full circadian (adaptive trigger)")] + [
        ("heads_ablation", v, label) for v, label in ABLATIONS
    ]
    full = _val(ctx, "heads", "circadian", "accuracy")
    for study, variant, label in entries:
        if not ctx.has(study) or np.isnan(_val(ctx, study, variant, "accuracy")):
            continue
        p = ("heads", "abl", variant)
        acc = ctx.mean_pm((*p, "accuracy"), study, variant, "accuracy")
        acc_mean = _val(ctx, study, variant, "accuracy")
        delta = "---" if study == "heads" else ctx.macro((*p, "delta"), acc_mean - full, "+.3f",
                                                          source=f"{study}/{variant} accuracy minus heads/circadian")
        cells = [
            ctx.macro((*p, m), _val(ctx, study, variant, m), fmt, source=f"{ctx.profile}:{study}/{variant}/{m} mean")
            for m, fmt in (("splits", ".1f"), ("prunes", ".1f"), ("rollbacks", ".1f"), ("hidden_end", ".1f"))
        ]
        rows.append([label, acc, delta, *cells])
        frame.append({"variant": variant, "accuracy": acc_mean, "delta_vs_full": acc_mean - full,
                      **{m: _val(ctx, study, variant, m) for m in ("splits", "prunes", "rollbacks", "sleeps", "hidden_end")}})
    if not rows:
        return
    ctx.write_csv("heads_ablation", pd.DataFrame(frame))
    ctx.write_table(
        "heads_ablation",
        latex_table(
            ["Circadian head", "Accuracy", "$\\Delta$ vs full", "Splits", "Prunes", "Rollbacks", "Final width"],
            rows,
            caption="Circadian head ablations: each switches one mechanism off (mean over seeds; accuracy with 95\\% CI).",
            label="tab:heads-ablation",
            align="lcccccc",
            size="\\footnotesize",
        ),
    )


# ---- figures ------------------------------------------------------------------------------
def figures(ctx: ReportContext) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns

    # accuracy vs epoch, mean and 95% band over seeds
    rows = []
    for variant, label, _ in HEADS:
        for r in ctx.records_for("heads", variant):
            for e, a in zip(r["history"]["epoch"], r["history"]["accuracy"]):
                rows.append({"head": label, "epoch": e, "accuracy": a, "seed": r["seed"]})
    if rows:
        fig, ax = plt.subplots(figsize=(4.6, 3.0))
        sns.lineplot(pd.DataFrame(rows), x="epoch", y="accuracy", hue="head", errorbar=("ci", 95), ax=ax)
        ax.set_ylabel("test accuracy")
        ctx.save_figure(fig, "heads_accuracy")

    # hidden width over sleeps: full circadian and the ablations
    rows = []
    entries = [("heads", "circadian", "full")] + [("heads_ablation", v, v) for v, _ in ABLATIONS]
    for study, variant, label in entries:
        for r in ctx.records_for(study, variant):
            width = r["metrics"].get("hidden_start")
            rows.append({"variant": label, "sleep": 0, "hidden": width, "seed": r["seed"]})
            for i, ev in enumerate(r["info"].get("events", []), start=1):
                rows.append({"variant": label, "sleep": i, "hidden": ev["hidden_after"], "seed": r["seed"]})
    if rows:
        fig, ax = plt.subplots(figsize=(4.6, 3.0))
        sns.lineplot(pd.DataFrame(rows), x="sleep", y="hidden", hue="variant", errorbar=None, ax=ax, marker="o")
        ax.set_ylabel("hidden width")
        ax.set_xlabel("sleep")
        ctx.save_figure(fig, "heads_width")

    # speed: head training samples/s and inference p95 latency
    rows = [
        {"head": label, "seed": r["seed"], "train samples/s": r["metrics"]["train_sps"],
         "p95 latency (ms)": r["metrics"]["infer_p95_ms"]}
        for variant, label, _ in HEADS
        for r in ctx.records_for("heads", variant)
    ]
    if rows:
        frame = pd.DataFrame(rows)
        fig, axes = plt.subplots(1, 2, figsize=(6.4, 2.6))
        sns.barplot(frame, x="head", y="train samples/s", errorbar=("ci", 95), ax=axes[0])
        sns.barplot(frame, x="head", y="p95 latency (ms)", errorbar=("ci", 95), ax=axes[1])
        for ax in axes:
            ax.set_xlabel("")
            ax.tick_params(axis="x", labelrotation=20)
        fig.tight_layout()
        ctx.save_figure(fig, "heads_speed")
