"""hal_sleep_wake on Mammoth's protocols: the reference methods that set the scale.

``hal_seqcl`` is Mammoth's Seq-CIFAR-10 protocol (ResNet-18): mini runs it on Split-Digits, the paper
profile on Seq-CIFAR-10 (Buzzega et al. 2020). ``hal_seqmnist`` (mini) is Mammoth's Seq-MNIST protocol
(its MNIST MLP, batch 10, one epoch) on Split-Digits. Both: one shared head trained over all its logits,
tested class-incremental and task-incremental from the same run. Records are read through the study's
contract; numbers are percentages, as Mammoth prints them. Macros of ``hal_seqcl`` start ``halSeqcl``,
those of ``hal_seqmnist`` ``halSeqmnist``.

* ``hal_seqcl``: class-IL and task-IL ACC, class-IL forgetting and BWT per method (mean $\\pm$ 95%
  t-interval); on Seq-CIFAR-10 also Mammoth's published numbers (pipelines/reports/published.yaml);
* the literature's class-IL order joint > DER++ > ER > SGD fine-tuning, each step a paired difference
  with its t-interval and paired t-test - a check of each implementation before any HAL number is read;
* figure ``hal_seqcl``: class-IL and task-IL ACC per method.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pandas as pd

from circadian_core.contract import TypedRecord
from circadian_core.stats import PairedDifference, paired_difference, t_errorbar, t_interval
from pipelines.reports import ReportContext, latex_table
from pipelines.reports.context import macro_name
from pipelines.reports.hal import matrix_frame, typed

STUDIES = ("hal_seqcl", "hal_seqmnist")
ORDER = 41
METHOD_LABELS = {"finetune": "SGD fine-tuning", "joint": "Joint (upper bound)", "lwf": "LwF", "er": "ER",
                 "derpp": "DER++", "agem": "A-GEM", "hal": "HAL (ours)", "ewc": "EWC"}
METHOD_ORDER = ("joint", "finetune", "lwf", "agem", "er", "derpp", "hal", "ewc")
ORDER_CHECK = ("joint", "derpp", "er", "finetune")  # the literature's class-IL order, best first
BUFFERED = ("er", "derpp", "agem", "hal")


@dataclasses.dataclass(frozen=True)
class Row:
    variant: str
    method: str
    buffer: int | None
    one_forward: bool = False  # DER++ diagnostic: its three batches in one forward pass

    @property
    def label(self) -> str:
        inside = ", ".join(([str(self.buffer)] if self.buffer else []) + (["one forward"] if self.one_forward else []))
        return METHOD_LABELS[self.method] + (f" ({inside})" if inside else "")

    @property
    def key(self) -> str:
        """published.yaml key: method, or method-buffer (the diagnostic has none)."""
        if self.one_forward:
            return f"{self.method}-{self.buffer}-one-forward"
        return f"{self.method}-{self.buffer}" if self.buffer else self.method


def rows_of(recs: list[TypedRecord[Any, Any]]) -> list[Row]:
    """One row per variant, from its settings (method, buffer), in the table's order."""
    seen: dict[str, Row] = {}
    for rec in recs:
        m = rec.settings.method
        seen.setdefault(rec.variant, Row(rec.variant, m, rec.settings.memory.capacity if m in BUFFERED else None,
                                         m == "derpp" and rec.settings.der.one_forward))
    return sorted(seen.values(), key=lambda r: (METHOD_ORDER.index(r.method), r.buffer or 0, r.one_forward))


def _pct(d: PairedDifference) -> PairedDifference:
    return dataclasses.replace(d, mean=100 * d.mean, ci95=100 * d.ci95)


def _on_cifar10(recs: list[TypedRecord[Any, Any]]) -> bool:
    """Mammoth's published numbers are compared only with runs of its protocol: Seq-CIFAR-10 itself."""
    return all(all(t.startswith("cifar10 ") for t in r.info.tasks) for r in recs)


def _key(study: str) -> str:
    """The macro key of a study: ``seqcl``, ``seqmnist``."""
    return study.removeprefix("hal_")


def tables(ctx: ReportContext) -> None:
    for study in STUDIES:
        if ctx.has(study):
            _study_tables(ctx, study)


def _study_tables(ctx: ReportContext, study: str) -> None:
    recs = typed(ctx, study)
    key = _key(study)
    frame = matrix_frame(recs)
    ctx.write_csv(f"{study}_matrix_metrics", frame)
    rows = rows_of(recs)
    published = ctx.published("hal_seqcl.seq_cifar10") if study == "hal_seqcl" and _on_cifar10(recs) else None
    _setting(ctx, recs, study)
    body = []
    for row in rows:
        sub = frame[frame["variant"] == row.variant]
        cells = [row.label]
        for view, metric, fmt in (("class", "acc", ".1f"), ("task", "acc", ".1f"), ("class", "forgetting", ".1f"),
                                  ("class", "bwt", "+.1f")):
            values = [100 * v for v in sub[sub["view"] == view][metric] if v is not None and not pd.isna(v)]
            cells.append(_pm(ctx, ("hal", key, row.variant, view, metric), values,
                             f"{ctx.profile}:{study}/{row.variant} {view} {metric} x 100", fmt) if values else "--")
        if published is not None:
            pub = published.get(row.key) or {}
            for view in ("class", "task"):
                cells.append(ctx.macro(("hal", "seqcl", "published", row.key, view), pub[view], ".2f",
                                       source=f"published.yaml hal_seqcl.seq_cifar10.{row.key}.{view}")
                             if view in pub else "--")
        body.append(cells)
    header = ["Method (buffer)", "Class-IL ACC", "Task-IL ACC", "Class-IL $F$", "Class-IL BWT"]
    if published is not None:
        header += ["Class-IL, Mammoth", "Task-IL, Mammoth"]
    def ref(name: str) -> str:  # the study's setting macro, as _setting names it
        return f"\\{macro_name(('hal', key, name))}{{}}"

    network = "Mammoth's MNIST network" if recs[0].settings.model.arch == "mlp" else "ResNet-18"
    ctx.write_table(study, latex_table(
        header, body,
        caption=(f"Reference methods on Mammoth's protocol ({network}), {ref('sequence')} ({ref('tasks')} tasks of "
                 f"{ref('classes')} classes): one shared head, tested class-incremental and task-incremental; "
                 f"percent, mean $\\pm$ 95\\% CI over {ref('seeds')} seeds."
                 + (" The last columns are Mammoth's published numbers (Buzzega et al.\\ 2020)." if published
                    is not None else "")),
        label=f"tab:hal-{key}", align="l" + "c" * (len(header) - 1),
        notes="ACC: mean final accuracy over tasks; $F$: forgetting (Chaudhry et al.); joint training learns once, "
              "after the last task, so it has no forgetting or BWT (--).",
        size="\\scriptsize"))
    _order_check(ctx, frame, rows, study)


def _setting(ctx: ReportContext, recs: list[TypedRecord[Any, Any]], study: str) -> None:
    rec = recs[0]
    cfg, info = rec.settings, rec.info
    src, prefix = f"{ctx.profile}:{study} run records", ("hal", _key(study))
    digits = all(t.startswith("digits") for t in info.tasks)
    seq = "Split-Digits" if digits else ("Seq-CIFAR-10" if _on_cifar10(recs) else info.tasks[0].split(" ")[0])
    for name, value, fmt in (("sequence", seq, ""), ("tasks", len(info.tasks), "d"),
                             ("classes", info.classes_per_task[0], "d"), ("seeds", len({r.seed for r in recs}), "d"),
                             ("epochs", cfg.wake.epochs, "d"), ("batch", cfg.wake.batch_size, "d"),
                             ("width", cfg.model.width, "d"), ("image", "$\\times$".join(map(str, info.image_shape[1:])), ""),
                             ("norm", "BatchNorm" if cfg.model.norm == "batch" else "GroupNorm", ""),
                             ("hidden", cfg.model.hidden, "d")):
        if name in (("width", "norm") if cfg.model.arch == "mlp" else ("hidden",)):
            continue  # the MLP has no width or norm layers, the ResNet no hidden size
        ctx.macro((*prefix, name), value, fmt, source=f"{src}: {name}")


def _pm(ctx: ReportContext, parts: tuple[str, ...], values: list[float], source: str, fmt: str) -> str:
    iv = t_interval(values)
    m = ctx.macro((*parts, "mean"), iv.mean, fmt, source=source + " mean")
    if math.isnan(iv.ci95):
        return m
    return m + "\\,$\\pm$\\," + ctx.macro((*parts, "ci"), iv.ci95, fmt.lstrip("+"), source=source + " 95% CI")


def _by_seed(frame: pd.DataFrame, variant: str) -> dict[int, float]:
    sub = frame[(frame["variant"] == variant) & (frame["view"] == "class")]
    return {int(s): float(v) for s, v in zip(sub["seed"], sub["acc"])}


def _order_check(ctx: ReportContext, frame: pd.DataFrame, rows: list[Row], study: str) -> None:
    """joint > DER++ > ER > SGD in class-IL ACC, each step paired by seed (the smallest buffer run)."""
    key = _key(study)
    pick: dict[str, str] = {}
    for row in rows:  # the smallest buffer, Mammoth's DER++ (three forward passes)
        if row.method in ORDER_CHECK and row.method not in pick and not row.one_forward:
            pick[row.method] = row.variant
    if any(m not in pick for m in ORDER_CHECK):
        return
    holds = []
    for better, worse in zip(ORDER_CHECK, ORDER_CHECK[1:]):
        d = paired_difference(_by_seed(frame, pick[better]), _by_seed(frame, pick[worse]))
        prefix = ("hal", key, "order", better, worse)
        ctx.paired_pm(prefix, _pct(d), fmt=".1f",
                      source=f"{ctx.profile}:{study} {pick[better]} - {pick[worse]}, class-IL ACC x 100,")
        ctx.macro((*prefix, "verdict"), d.verdict("above", "below", "indistinguishable from"),
                  source=f"{ctx.profile}:{study} {better} vs {worse}: paired 95% CI")
        holds.append(d.low > 0)
    ctx.macro(("hal", key, "order", "holds"), "holds" if all(holds) else "does not hold",
              source=f"{ctx.profile}:{study}: every step of joint > DER++ > ER > SGD has its CI above 0")
    one = next((r for r in rows if r.one_forward and r.buffer == rows_buffer(rows, pick["derpp"])), None)
    if one is not None:  # the diagnostic: DER++ with BatchNorm seeing one batch, against ER and against DER++
        for other, name in ((pick["er"], "er"), (pick["derpp"], "derpp"), (pick["joint"], "joint")):
            d = paired_difference(_by_seed(frame, one.variant), _by_seed(frame, other))
            prefix = ("hal", key, "one", "forward", "vs", name)
            ctx.paired_pm(prefix, _pct(d), fmt=".1f",
                          source=f"{ctx.profile}:{study} {one.variant} - {other}, class-IL ACC x 100,")
            ctx.macro((*prefix, "verdict"), d.verdict("above", "below", "indistinguishable from"),
                      source=f"{ctx.profile}:{study} {one.variant} vs {other}: paired 95% CI")


def rows_buffer(rows: list[Row], variant: str) -> int | None:
    return next(r.buffer for r in rows if r.variant == variant)


def figures(ctx: ReportContext) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns

    if not ctx.has("hal_seqcl"):
        return
    recs = typed(ctx, "hal_seqcl")
    frame = matrix_frame(recs)
    rows = rows_of(recs)
    labels = {r.variant: r.label for r in rows}
    frame = frame.assign(method=frame["variant"].map(labels), acc=100 * frame["acc"].astype(float),
                         scenario=frame["view"].map({"class": "class-incremental", "task": "task-incremental"}))
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    sns.barplot(frame, y="method", x="acc", hue="scenario", order=[r.label for r in rows],
                hue_order=["class-incremental", "task-incremental"], errorbar=t_errorbar, ax=ax)
    ax.set_xlabel("ACC (%)")
    ax.set_ylabel("")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.4, -0.16), ncol=2, frameon=False)
    ctx.save_figure(fig, "hal_seqcl")
