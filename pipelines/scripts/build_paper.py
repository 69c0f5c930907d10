"""Build paper/build/main.pdf with latexmk: ``python -m pipelines.scripts.build_paper``.

The paper \\input{}s only generated files (paper/generated/), so this stage runs after aggregate
and figures. Missing TeX gives one error naming the packages to install.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from pipelines.dag import ROOT

TEX_HINT = (
    "latexmk not found: install TeX Live (make tex, or apt-get install latexmk texlive-latex-base "
    "texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended texlive-science lmodern)"
)


MACRO = re.compile(r"^\\newcommand\{\\([A-Za-z]+)\}\{(.*)\}(?:\s*%.*)?$")


def pdf_text(pdf: Path) -> str:
    """The PDF's text with whitespace collapsed (pdftotext from poppler)."""
    if shutil.which("pdftotext") is None:
        raise RuntimeError("pdftotext not found: install poppler-utils (make tex does it)")
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split())


def read_macros(path: Path) -> dict[str, str]:
    macros = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = MACRO.match(line.strip())
        if m:
            macros[m.group(1)] = m.group(2)
    return macros


_TEX_TEXT = (("$\\times$", "\u00d7"), ("\\times", "\u00d7"), ("$\\pm$", "\u00b1"), ("\\pm", "\u00b1"),
             ("\\%", "%"), ("\\_", "_"), ("\\,", ""), ("$", ""), ("{", ""), ("}", ""))


def _as_typeset(value: str) -> str:
    """A macro's TeX source as pdftotext shows it (``8$\\times$8`` -> ``8\u00d78``)."""
    for tex, text in _TEX_TEXT:
        value = value.replace(tex, text)
    return value


def check_numbers(pdf: Path, macros_file: Path) -> list[str]:
    """Problems: a generated value that does not appear in the PDF, or a missing generated file."""
    text = pdf_text(pdf)
    problems = [
        f"\\{name} = {value!r} is generated but not in the PDF text (quote it or stop generating it)"
        for name, value in read_macros(macros_file).items()
        if value and value != "n/a" and _as_typeset(value) not in text
    ]
    if "is missing: run the pipeline" in text or "is missing: run" in text:
        problems.append("the PDF shows a missing generated file: run the pipeline first")
    if "??" in text:
        problems.append("the PDF has an undefined reference (??)")
    return problems


def main() -> int:
    if shutil.which("latexmk") is None:
        print(f"error: {TEX_HINT}", file=sys.stderr)
        return 2
    paper = ROOT / "paper"
    cmd = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-outdir=build", "main.tex"]
    proc = subprocess.run(cmd, cwd=paper, capture_output=True, text=True)
    if proc.returncode != 0:
        log = paper / "build" / "main.log"
        tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else proc.stdout.splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
        print(f"error: latexmk failed (full log: {log})", file=sys.stderr)
        return proc.returncode
    pdf = paper / "build" / "main.pdf"
    problems = check_numbers(pdf, paper / "generated" / "macros.tex")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"paper -> {pdf} (every generated number appears in it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
