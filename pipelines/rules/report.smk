# All runs -> tidy tables, LaTeX tables, macros, figures.


rule aggregate:
    input:
        PROFILE.run_paths(),
    output:
        csv=directory(PROFILE.tables),
        tex=directory("paper/generated/tables"),
        macros="paper/generated/macros.tex",
        sections="paper/generated/sections.tex",
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/aggregate.log",
    shell:
        f"{PY} -m pipelines.scripts.aggregate --profile {PROFILE.name} > {{log}} 2>&1"


rule figures:
    input:
        PROFILE.run_paths(),
    output:
        png=directory(PROFILE.figures),
        pdf=directory("paper/generated/figures"),
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/figures.log",
    shell:
        f"{PY} -m pipelines.scripts.figures --profile {PROFILE.name} > {{log}} 2>&1"
