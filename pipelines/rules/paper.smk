# The PDF, built only from paper/*.tex and paper/generated/.


rule paper:
    input:
        "paper/main.tex",
        "paper/refs.bib",
        "pipelines/scripts/build_paper.py",
        "paper/generated/macros.tex",
        "paper/generated/sections.tex",
        "paper/generated/tables",
        "paper/generated/figures",
        sections=sorted(str(p) for p in Path("paper/sections").glob("*.tex")),
    output:
        "paper/build/main.pdf",
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/paper.log",
    shell:
        f"{PY} -m pipelines.scripts.build_paper > {{log}} 2>&1"
