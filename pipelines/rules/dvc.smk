# What `dvc commit` records after a Snakemake run (make repro), so DVC's pipeline of the same profile
# is complete and `dvc repro` is a no-op: the resolved configs DVC's stages depend on, and the
# per-study metrics and plot data (`dvc metrics show`, `dvc plots diff`). Snakemake's own triggers
# (params, input, code) rerun cells directly, so no cell depends on these files here.


rule configs:
    output:
        directory(config_dir(PROFILE)),
    params:
        # exactly what the files hold: a change of any resolved config rewrites them (a second)
        content=json.dumps({**cell_configs(PROFILE), **artifact_configs(PROFILE)}, sort_keys=True),
    benchmark:
        f"{BENCH}/configs.tsv"
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/configs.log",
    shell:
        f"{PY} -m pipelines.scripts.dvc_configs --profile {PROFILE.name} --no-dvc-check > {{log}} 2>&1"


rule dvc_metrics:
    input:
        PROFILE.tables,
        "pipelines/scripts/dvc_metrics.py",
    output:
        metrics=[report(metrics_path(PROFILE, s), category="Metrics", labels={"study": s}) for s in PROFILE.studies],
        plots=[plot_path(PROFILE, s) for s in PROFILE.studies],
    benchmark:
        f"{BENCH}/dvc_metrics.tsv"
    conda:
        CONDA_ENV
    log:
        f"{RESULTS}/logs/dvc_metrics.log",
    shell:
        f"{PY} -m pipelines.scripts.dvc_metrics --profile {PROFILE.name} > {{log}} 2>&1"
