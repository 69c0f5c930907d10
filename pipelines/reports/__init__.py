"""Report modules: one per family of studies, discovered by name.

A report module in this package defines

* ``STUDIES``: the study names it reports (a tuple);
* ``tables(ctx: ReportContext) -> None``: writes LaTeX tables with ``ctx.write_table`` and defines
  every number the text quotes with ``ctx.macro``;
* ``figures(ctx: ReportContext) -> None`` (optional): saves figures with ``ctx.save_figure``;
* ``SECTION`` (optional): the results section it fills, a file stem under paper/sections/
  (default ``results_<module name>``); ``ORDER`` (optional int) places it in the paper.

Modules are run only when at least one of their studies is in the profile, and only their results
sections are put in the paper (paper/generated/<profile>/sections.tex).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from pipelines.reports.context import Macros, ReportContext, latex_escape, latex_table

__all__ = ["Macros", "ReportContext", "latex_escape", "latex_table", "report_modules"]


def report_modules() -> list[ModuleType]:
    """Every report module of this package, in name order."""
    mods = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name in {"context", "published"} or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "STUDIES") and hasattr(mod, "tables"):
            mods.append(mod)
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))
