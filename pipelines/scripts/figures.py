"""Render every report's figures: PDF into paper/generated/<profile>/figures, PNG into results/<profile>/figures.

``python -m pipelines.scripts.figures [--profile mini]``. Records are checked as for aggregate;
both folders are built in temporary siblings and swapped into place only when every figure is
drawn, so a failing report leaves the previous figures as they were.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")

import seaborn as sns

from pipelines.dag import ROOT, Profile
from pipelines.reports import ReportContext, report_modules
from pipelines.scripts.aggregate import build_context
from pipelines.scripts.errors import profile_main
from pipelines.scripts.staging import Staging


def run(profile: Profile) -> tuple[ReportContext, int]:
    """Draw every figure of ``profile`` (all-or-nothing); returns the context and the number of reports drawn."""
    ctx = build_context(profile, figures=True)
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind")
    matplotlib.rcParams["pdf.fonttype"] = 42
    n = 0
    with Staging() as stage:
        ctx.figures_dir = stage.folder(ROOT / profile.generated_figures)
        ctx.png_dir = stage.folder(ROOT / profile.figures)
        for mod in report_modules():
            if hasattr(mod, "figures") and any(ctx.has(s) for s in mod.STUDIES):
                mod.figures(ctx)
                n += 1
    ctx.figures_dir, ctx.png_dir = ROOT / profile.generated_figures, ROOT / profile.figures
    return ctx, n


def _stage(profile: Profile) -> int:
    _, n = run(profile)
    print(f"figures of {n} report(s) -> {profile.generated_figures} and {profile.figures}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return profile_main(__doc__, _stage, argv)


if __name__ == "__main__":
    sys.exit(main())
