# The PDF of the profile, built only from paper/*.tex and paper/generated/<profile>/.


rule paper:
    input:
        "paper/main.tex",
        "paper/refs.bib",
        "pipelines/scripts/build_paper.py",
        PROFILE.macros_tex,
        PROFILE.sections_tex,
        PROFILE.generated_tables,
        PROFILE.generated_figures,
        sections=sorted(str(p) for p in Path("paper/sections").glob("*.tex")),
    output:
        PROFILE.pdf,
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/paper.log",
    shell:
        f"{PY} -m pipelines.scripts.build_paper --profile {PROFILE.name} > {{log}} 2>&1"
