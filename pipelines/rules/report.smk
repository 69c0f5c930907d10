# All runs -> tidy tables, LaTeX tables, macros, figures. The scripts and report modules are inputs
# too (as in dvc.yaml), so editing a report reruns these two rules and nothing upstream.
REPORT_CODE = sorted(str(p) for p in Path("pipelines/reports").glob("*.py"))


rule aggregate:
    input:
        PROFILE.run_paths(),
        "pipelines/scripts/aggregate.py",
        REPORT_CODE,
    output:
        csv=directory(PROFILE.tables),
        tex=directory(PROFILE.generated_tables),
        macros=PROFILE.macros_tex,
        sections=PROFILE.sections_tex,
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
        png=directory(PROFILE.figures),
        pdf=directory(PROFILE.generated_figures),
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
        f"{RESULTS}/targets.json",
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/targets.log",
    shell:
        f"{PY} -m pipelines.scripts.check_targets --profile {PROFILE.name} > {{log}} 2>&1"
