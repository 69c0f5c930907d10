"""hal_sleep_wake: the sleep ablations (study ``hal``) and the seed's extended sequence (``hal_extended``, paper).

Records are read through the study's contract (``ctx.parsed(CONTRACT, ...)``); every number is
re-derived from the accuracy matrices in the records (``info.views``) and checked against the
recorded metrics, so a table and its records cannot disagree.

* ``hal_results``: ACC, BWT and forgetting per variant and view (mean, 95% t-interval over seeds);
* ``hal_target``: the project's target - 50% less forgetting than the no-sleep baseline *and* an
  average accuracy no worse than the baseline's - per variant and view, paired by seed: the margin
  ``F_variant - F_no-sleep / 2`` (its mean and t-interval) and ``ACC_variant - ACC_no-sleep`` (paired
  difference, t-interval, paired t-test);
* ``hal_extended`` (paper profile): the seed's longer sequence;
* figures ``hal_forgetting`` (ACC and forgetting per variant and view) and ``hal_first_task``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from circadian_core.contract import TypedRecord
from circadian_core.stats import paired_difference, t_errorbar, t_interval
from hal_sleep_wake.config import SCENARIO_PREFIX
from hal_sleep_wake.studies import CONTRACT, metrics_of
from pipelines.reports import ReportContext, latex_table

STUDIES = ("hal", "hal_extended")
ORDER = 40
TARGET = 0.5  # the project's stated target: 50% less forgetting than the no-sleep baseline
BASELINE = "no-sleep"
GPU_TARGET_MIN = 10  # issue 5: under 10 minutes for one seed of the full CIFAR sequence on an H100

VARIANTS = (  # variant, label: each changes one thing against the baseline (or, last, against full sleep)
    ("no-sleep", "No sleep (baseline)"),
    ("nrem", "NREM only"),
    ("reset-opt", "Optimizer reset only"),
    ("rem", "REM only"),
    ("sleep", "Sleep (all three)"),
    ("compress", "No sleep + compression"),
    ("sleep-compress", "Sleep + compression"),
)
LABELS = dict(VARIANTS)
VIEWS = (("task", "til", "task-incremental"), ("class", "cil", "class-incremental"))
DATASETS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "permuted_mnist": "PermutedMNIST",
            "fashion_mnist": "FashionMNIST", "svhn": "SVHN"}


# ---- reading ------------------------------------------------------------------------------------
def typed(ctx: ReportContext, study: str) -> list[TypedRecord[Any, Any]]:
    """The study's records through its contract, each checked against its own accuracy matrices."""
    recs = ctx.parsed(CONTRACT, study)
    for rec in recs:
        derived = metrics_of(rec.info.views, rec.info.continual)
        for name, value in derived.items():
            got = rec.metrics.get(name)
            if (value is None) != (got is None) or (value is not None and abs(value - got) > 1e-9):
                raise ValueError(f"{study}/{rec.variant}/seed{rec.seed}: recorded {name} {got} differs from its "
                                 f"accuracy matrix ({value}); delete the record and rerun its cell")
    return recs


def matrix_frame(recs: list[TypedRecord[Any, Any]]) -> pd.DataFrame:
    """One row per (variant, seed, view) with ACC, BWT, forgetting and the level each task was learned to."""
    rows = []
    for rec in recs:
        for v in rec.info.views:
            m = metrics_of([v], rec.info.continual)
            p = SCENARIO_PREFIX[v.view]
            rows.append({"variant": rec.variant, "seed": rec.seed, "view": v.view,
                         **{k: m[f"{p}_{k}"] for k in ("acc", "bwt", "forgetting", "learned")},
                         "first_task_final": v.matrix[-1][0]})
    return pd.DataFrame(rows, columns=["variant", "seed", "view", "acc", "bwt", "forgetting", "learned",
                                       "first_task_final"])


def _by_seed(frame: pd.DataFrame, variant: str, view: str, metric: str) -> dict[int, float]:
    sub = frame[(frame["variant"] == variant) & (frame["view"] == view)]
    return {int(s): float(v) for s, v in zip(sub["seed"], sub[metric]) if v is not None and not pd.isna(v)}


def target_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (view, variant): the target against the no-sleep baseline, paired by seed.

    Forgetting: per seed the margin ``F - (1 - TARGET) F_no-sleep`` (<= 0: the target's forgetting part is
    met), its mean and 95% t-interval. Accuracy: the paired difference ``ACC - ACC_no-sleep``. Reached: the
    margin's whole interval <= 0 and the accuracy difference's interval not wholly below 0 (no worse).
    Not reached: the margin's interval wholly > 0, or the accuracy's wholly < 0 (sleep scale 0 reaches
    zero forgetting at chance accuracy: this is what stops it "reaching" the target). Otherwise undecided.
    """
    rows = []
    for view, _, _ in VIEWS:
        base_f = _by_seed(frame, BASELINE, view, "forgetting")
        if not base_f:
            continue
        base_acc = _by_seed(frame, BASELINE, view, "acc")
        for variant, _ in VARIANTS:
            if variant == BASELINE:
                continue
            var_f = _by_seed(frame, variant, view, "forgetting")
            seeds = sorted(set(var_f) & set(base_f))
            if not seeds:
                continue
            f_base = sum(base_f[s] for s in seeds) / len(seeds)
            f_var = sum(var_f[s] for s in seeds) / len(seeds)
            margin = t_interval([var_f[s] - (1.0 - TARGET) * base_f[s] for s in seeds])
            acc = paired_difference(_by_seed(frame, variant, view, "acc"), base_acc)
            rows.append({"view": view, "variant": variant, "seeds": len(seeds), "forgetting_baseline": f_base,
                         "forgetting": f_var, "reduction": 1.0 - f_var / f_base if f_base > 0 else float("nan"),
                         "margin_mean": margin.mean, "margin_ci95": margin.ci95, "acc_diff": acc.mean,
                         "acc_low": acc.low, "acc_high": acc.high, "acc_p": acc.p_value,
                         "verdict": _verdict(f_base, margin.mean, margin.ci95, acc.high)})
    return pd.DataFrame(rows)


def _verdict(f_base: float, margin: float, ci: float, acc_high: float) -> str:
    if f_base <= 0:
        return "undefined"  # the baseline does not forget
    if math.isnan(ci):
        return "undecided"  # one seed: no interval
    if margin - ci > 0 or acc_high < 0:
        return "not reached"
    if margin + ci <= 0:
        return "reached"
    return "undecided"


# ---- tables -------------------------------------------------------------------------------------
def _setting(ctx: ReportContext, recs: list[TypedRecord[Any, Any]]) -> dict[str, Any]:
    rec = next((r for r in recs if r.variant == "sleep"), recs[0])
    cfg, info = rec.settings, rec.info
    tasks = info.tasks
    digits = all(t.startswith("digits") for t in tasks)
    run = info.runs[0]
    learned = [r.metrics[f"{p}_learned"] for r in recs for _, p, _ in VIEWS if r.metrics.get(f"{p}_learned") is not None]
    return {
        "tasks": len(tasks),
        "sequence": "Split-Digits" if digits else " $\\to$ ".join(DATASETS.get(t, t) for t in tasks),
        "image": "$\\times$".join(str(d) for d in info.image_shape[1:]),
        "width": cfg.model.width, "rank": cfg.lora.rank, "alpha": cfg.lora.alpha, "capacity": cfg.memory.capacity,
        "replay": cfg.memory.replay_n, "epochs": cfg.wake.epochs, "batch": cfg.wake.batch_size, "lr": cfg.wake.lr,
        "rem_steps": cfg.rem.steps, "rem_lr": cfg.rem.lr, "temperature": cfg.rem.temperature,
        "keep": 100 * cfg.memory.keep, "seeds": len({r.seed for r in recs}),
        "device": str(rec.raw.get("device", "cpu")).split(":")[0],
        "trainable": run.trainable_params, "total": run.total_params,
        "learned": t_interval(learned).mean,
    }


def tables(ctx: ReportContext) -> None:
    if ctx.has("hal"):
        recs = typed(ctx, "hal")
        _setting_macros(ctx, recs)
        frame = matrix_frame(recs)
        ctx.write_csv("hal_matrix_metrics", frame)
        _results_table(ctx, frame)
        _target_table(ctx, frame)
        _comparisons(ctx, frame)
        rates = [r.timings.get("wake_images_per_s") for r in recs if r.settings.method == "hal"]
        merges = [r.timings.get("merge_ms") for r in recs if r.variant == "sleep"]
        src = f"{ctx.profile}:hal run records, timings"
        ctx.macro(("hal", "wake", "rate"), t_interval(rates).mean, ",.0f", source=f"{src}: wake_images_per_s, mean")
        ctx.macro(("hal", "merge", "ms"), t_interval(merges).mean, ".1f", source=f"{src}: merge_ms of sleep, mean")
    if ctx.has("hal_extended"):
        _extended_table(ctx, typed(ctx, "hal_extended"))


def _setting_macros(ctx: ReportContext, recs: list[TypedRecord[Any, Any]]) -> None:
    src = f"{ctx.profile}:hal run records"
    s = _setting(ctx, recs)
    formats = {"tasks": "d", "width": "d", "rank": "d", "alpha": "g", "capacity": "d", "replay": "d", "epochs": "d",
               "batch": "d", "lr": "g", "rem_steps": "d", "rem_lr": "g", "temperature": "g", "keep": ".0f",
               "seeds": "d", "trainable": ",d", "total": ",d", "learned": ".3f"}
    for key, value in s.items():
        ctx.macro(("hal", key.replace("_", " ")), value, formats.get(key, ""), source=f"{src}: {key}")


def _pm(ctx: ReportContext, parts: tuple[str, ...], values: list[float], source: str, fmt: str = ".3f") -> str:
    iv = t_interval(values)
    m = ctx.macro((*parts, "mean"), iv.mean, fmt, source=source + " mean")
    if math.isnan(iv.ci95):
        return m
    return m + "\\,$\\pm$\\," + ctx.macro((*parts, "ci"), iv.ci95, fmt.lstrip("+"), source=source + " 95% CI half-width")


def _results_table(ctx: ReportContext, frame: pd.DataFrame, study: str = "hal", variants=VARIANTS) -> None:
    rows = []
    for variant, label in variants:
        sub = frame[frame["variant"] == variant]
        if sub.empty:
            continue
        cells = [label]
        for view, prefix, _ in VIEWS:
            sc = sub[sub["view"] == view]
            if sc.empty:  # a variant that does not run this scenario
                cells += ["--"] * 3
                continue
            for metric, fmt in (("acc", ".3f"), ("bwt", "+.3f"), ("forgetting", ".3f")):
                src = f"{ctx.profile}:{study}/{variant} {view} {metric} from accuracy matrices"
                cells.append(_pm(ctx, (study, variant, prefix, metric), sc[metric].tolist(), src, fmt))
        rows.append(cells)
    name = "hal_results" if study == "hal" else f"{study}_results"
    ctx.write_table(name, latex_table(
        ["Variant", "ACC", "BWT", "Forgetting", "ACC", "BWT", "Forgetting"], rows,
        caption=(f"hal\\_sleep\\_wake on \\{_cmd(study, 'Sequence')}{{}}: ACC, BWT and forgetting of the accuracy "
                 "matrices, task-incremental (per-task heads, columns 2--4) and class-incremental (one shared masked "
                 f"head, columns 5--7); mean $\\pm$ 95\\% CI over \\{_cmd(study, 'Seeds')}{{}} seeds."),
        label="tab:hal" if study == "hal" else f"tab:{study.replace('_', '-')}", align="lcccccc",
        notes="Every variant changes one thing: against the baseline (no sleep), or, for the last row, against sleep. "
              "NREM: merge and adapter reset; sleep: NREM, REM and the optimizer reset; compression: class-balanced L1 "
              "compression at each task's end. --: a variant run class-incremental only. "
              "ACC: mean final accuracy over tasks; BWT: backward transfer (negative = forgetting); forgetting: "
              "Chaudhry et al. Only LoRA adapters train; the base, its norm layers and the heads stay as initialized.",
        size="\\scriptsize"))


def _cmd(study: str, what: str) -> str:
    return ("hal" if study == "hal" else "halExtended") + what


def _target_table(ctx: ReportContext, frame: pd.DataFrame) -> None:
    target = target_frame(frame)
    ctx.write_csv("hal_target", target)
    ctx.macro(("hal", "target", "pct"), 100 * TARGET, ".0f", source="project target (issue 5): 50% less forgetting")
    ctx.macro(("hal", "gpu", "target", "min"), GPU_TARGET_MIN, "d",
              source="issue 5 target: the full CIFAR sequence, every variant, one seed, one H100")
    rows = []
    for row in target.itertuples(index=False):
        prefix = SCENARIO_PREFIX[row.view]
        parts = ("hal", "target", row.variant, prefix)
        src = f"{ctx.profile}:hal/{row.variant} vs {BASELINE}, {row.view}"
        fb = ctx.macro((*parts, "base"), row.forgetting_baseline, ".3f", source=src + " (baseline forgetting)")
        fv = ctx.macro((*parts, "forgetting"), row.forgetting, ".3f", source=src + " (variant forgetting)")
        red = ctx.macro((*parts, "reduction"), 100 * row.reduction, ".0f",
                        source=src + ": 1 - mean F / mean F_baseline, x 100")
        margin = ctx.macro((*parts, "margin"), row.margin_mean, "+.3f", source=src + ": F - F_baseline/2, mean")
        if math.isfinite(row.margin_ci95):
            margin += "\\,$\\pm$\\," + ctx.macro((*parts, "margin", "ci"), row.margin_ci95, ".3f",
                                                 source=src + ": F - F_baseline/2, 95% CI half-width")
        acc = ctx.macro((*parts, "acc", "diff"), row.acc_diff, "+.3f", source=src + ": paired ACC difference")
        if math.isfinite(row.acc_low):
            acc += (" [" + ctx.macro((*parts, "acc", "low"), row.acc_low, ".3f", source=src + ": ACC diff 95% CI low")
                    + ", " + ctx.macro((*parts, "acc", "high"), row.acc_high, ".3f", source=src + ": ACC diff CI high")
                    + "]")
        verdict = ctx.macro((*parts, "verdict"), row.verdict, source=src + ": verdict (forgetting margin and ACC)")
        rows.append([LABELS[row.variant], row.view, fb, fv, red + "\\%", margin, acc, verdict])
    ctx.write_table("hal_target", latex_table(
        ["Variant", "IL", "$F_{\\text{no sleep}}$", "$F$", "Red.", "$F - F_{\\text{no sleep}}/2$",
         "$\\Delta$ACC [95\\% CI]", "Target"], rows,
        caption=("The project's target: 50\\% less forgetting $F$ than the no-sleep baseline, at an average accuracy "
                 "no worse than the baseline's. Red.: $1 - \\bar F/\\bar F_{\\text{no sleep}}$ (negative = more "
                 "forgetting). Both tests are paired by seed: the margin $F - F_{\\text{no sleep}}/2$, mean $\\pm$ "
                 "95\\% CI, and $\\Delta$ACC $=$ ACC $-$ ACC$_{\\text{no sleep}}$ (paired t-test)."),
        label="tab:hal-target", align="llcccccl",
        notes="Reached: the margin's whole interval is at or below 0 and $\\Delta$ACC's interval is not wholly below "
              "0; not reached: the margin's interval is above 0 or $\\Delta$ACC's below 0; undecided otherwise; "
              "undefined: the baseline does not forget. IL: task- or class-incremental.",
        size="\\scriptsize\\setlength{\\tabcolsep}{3pt}"))


COMPARISONS = (  # (variant, against): the one change each row of the paper's text reads
    ("nrem", BASELINE), ("reset-opt", BASELINE), ("rem", BASELINE), ("sleep", BASELINE),
    ("compress", BASELINE), ("sleep-compress", "sleep"),
)


def _comparisons(ctx: ReportContext, frame: pd.DataFrame) -> None:
    """Paired differences (ACC and forgetting, both views) of every one-change comparison, as macros."""
    for variant, against in COMPARISONS:
        for view, prefix, _ in VIEWS:
            for metric in ("acc", "forgetting"):
                d = paired_difference(_by_seed(frame, variant, view, metric), _by_seed(frame, against, view, metric))
                if d.n == 0:
                    continue
                parts = ("hal", variant, "vs", against, prefix, metric)
                src = f"{ctx.profile}:hal {variant} - {against}, {view} {metric},"
                ctx.paired_pm(parts, d, source=src)
                ctx.macro((*parts, "verdict"), d.verdict("above", "below", "indistinguishable from"),
                          source=f"{src} paired 95% CI against 0")


def _extended_table(ctx: ReportContext, recs: list[TypedRecord[Any, Any]]) -> None:
    frame = matrix_frame(recs)
    ctx.write_csv("hal_extended_matrix_metrics", frame)
    rec = recs[0]
    ctx.macro(("hal", "extended", "sequence"), " $\\to$ ".join(DATASETS.get(t, t) for t in rec.info.tasks),
              source=f"{ctx.profile}:hal_extended task names")
    ctx.macro(("hal", "extended", "seeds"), len({r.seed for r in recs}), "d", source=f"{ctx.profile}:hal_extended seeds")
    variants = [(v, LABELS.get(v, v)) for v in dict.fromkeys(r.variant for r in recs)]
    _results_table(ctx, frame, study="hal_extended", variants=variants)


# ---- figures ------------------------------------------------------------------------------------
def figures(ctx: ReportContext) -> None:
    if not ctx.has("hal"):
        return
    import matplotlib.pyplot as plt
    import seaborn as sns

    recs = typed(ctx, "hal")
    frame = matrix_frame(recs)
    if frame.empty:
        return
    order = [LABELS[v] for v, _ in VARIANTS if v in set(frame["variant"])]
    names = {v: n for v, _, n in VIEWS}
    frame = frame.assign(variant_label=frame["variant"].map(LABELS), scenario=frame["view"].map(names))
    hue = [n for _, _, n in VIEWS if n in set(frame["scenario"])]
    colors = dict(zip(hue, sns.color_palette()))
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.6), sharey=True)
    for ax, metric, xlabel in ((axes[0], "acc", "ACC (higher is better)"),
                               (axes[1], "forgetting", "forgetting (lower is better)")):
        sns.barplot(frame, y="variant_label", x=metric, hue="scenario", order=order, hue_order=hue, palette=colors,
                    errorbar=t_errorbar, ax=ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("")
        ax.get_legend().remove()
    base = frame[frame["variant"] == BASELINE].groupby("scenario")["forgetting"].mean()
    for name in hue:
        if name in base:
            axes[1].axvline(TARGET * base[name], ls="--", lw=1, color=colors[name])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=2, frameon=False, bbox_to_anchor=(0.5, -0.06))
    ctx.save_figure(fig, "hal_forgetting")

    rows = []
    for rec in recs:
        for v in rec.info.views:
            for i, row in enumerate(v.matrix):
                rows.append({"after task": i + 1, "accuracy on task 1": row[0], "variant": LABELS.get(rec.variant),
                             "scenario": names[v.view], "seed": rec.seed})
    g = sns.relplot(pd.DataFrame(rows), x="after task", y="accuracy on task 1", hue="variant", col="scenario",
                    kind="line", errorbar=None, height=2.8, aspect=1.1, marker="o", hue_order=order)
    g.set_titles("{col_name}")
    ctx.save_figure(g.figure, "hal_first_task")

