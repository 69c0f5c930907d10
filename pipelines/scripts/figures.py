"""Render every report's figures: PDF into paper/generated/figures, PNG into results/<profile>/figures.

``python -m pipelines.scripts.figures [--profile mini]``
"""

from __future__ import annotations

import argparse
import sys

import matplotlib

matplotlib.use("Agg")

import seaborn as sns

from pipelines.dag import load_profile
from pipelines.reports import report_modules
from pipelines.scripts.aggregate import _fresh, build_context


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--profile")
    args = ap.parse_args(argv)
    profile = load_profile(args.profile)
    try:
        ctx = build_context(profile, figures=True)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    assert ctx.figures_dir is not None and ctx.png_dir is not None
    _fresh(ctx.figures_dir)
    _fresh(ctx.png_dir)
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind")
    matplotlib.rcParams["pdf.fonttype"] = 42
    n = 0
    for mod in report_modules():
        if hasattr(mod, "figures") and any(ctx.has(s) for s in mod.STUDIES):
            mod.figures(ctx)
            n += 1
    print(f"figures of {n} report(s) -> {ctx.figures_dir} and {ctx.png_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
