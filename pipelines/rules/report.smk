# All runs -> tidy tables, LaTeX tables, macros, figures. The scripts and report modules are inputs
# too (as in dvc.yaml), so editing a report reruns these two rules and nothing upstream.
# `snakemake --report report.html` shows the tables, figures and metrics marked with report().
REPORT_CODE = sorted(str(p) for p in Path("pipelines/reports").glob("*.py"))


rule aggregate:
    input:
        PROFILE.run_paths(),
        "pipelines/scripts/aggregate.py",
        REPORT_CODE,
    output:
        csv=report(
            directory(PROFILE.tables),
            patterns=["{name}.csv"],
            caption="../report/tables.rst",
            category="Tables",
        ),
        tex=directory(PROFILE.generated_tables),
        macros=PROFILE.macros_tex,
        sections=PROFILE.sections_tex,
    benchmark:
        f"{BENCH}/aggregate.tsv"
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/aggregate.log",
    shell:
        f"{PY} -m pipelines.scripts.aggregate --profile {PROFILE.name} > {{log}} 2>&1"


rule figures:
    input:
        PROFILE.run_paths(),
        "pipelines/scripts/figures.py",
        REPORT_CODE,
    output:
        png=report(
            directory(PROFILE.figures),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
        pdf=directory(PROFILE.generated_figures),
    benchmark:
        f"{BENCH}/figures.tsv"
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/figures.log",
    shell:
        f"{PY} -m pipelines.scripts.figures --profile {PROFILE.name} > {{log}} 2>&1"


rule targets:
    input:
        PROFILE.tables,
        "pipelines/targets.yaml",
        "pipelines/scripts/check_targets.py",
    output:
        report(f"{RESULTS}/targets.json", caption="../report/targets.rst", category="Reproduction targets"),
    benchmark:
        f"{BENCH}/targets.tsv"
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/targets.log",
    shell:
        f"{PY} -m pipelines.scripts.check_targets --profile {PROFILE.name} > {{log}} 2>&1"
