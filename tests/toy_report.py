"""Report module for the toy study (copied into a scratch repo's pipelines/reports by the tests)."""

from pipelines.reports import latex_table

STUDIES = ("toy",)
SECTION = "results_toy"


def tables(ctx):
    rows = []
    for variant in sorted(ctx.summary_for("toy")["variant"].unique()):
        rows.append([variant, ctx.mean_pm(("toy", variant, "acc"), "toy", variant, "acc")])
    ctx.write_table("toy", latex_table(["variant", "ACC"], rows, caption="Toy.", label="tab:toy"))


def figures(ctx):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    frame = ctx.runs[ctx.runs["metric"] == "acc"]
    ax.bar(frame["variant"] + "/" + frame["seed"].astype(str), frame["value"])
    ctx.save_figure(fig, "toy_acc")
