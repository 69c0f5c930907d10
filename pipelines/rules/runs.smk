# One job per (study, variant, seed) cell.


wildcard_constraints:
    study="[a-z0-9][a-z0-9_]*",
    variant="[a-z0-9][a-z0-9_-]*",
    seed=r"-?\d+",


rule run_cell:
    input:
        lambda wc: PROFILE.artifact_paths(PROFILE.studies[wc.study].needs),
    output:
        f"{RESULTS}/runs/{{study}}/{{variant}}/seed{{seed}}.json",
    params:
        # a change of this cell's config reruns exactly this cell (Snakemake's params trigger)
        config=lambda wc: json.dumps(PROFILE.studies[wc.study].config(wc.variant), sort_keys=True),
    threads: lambda wc: resources(PROFILE.studies[wc.study].resources)["threads"]
    resources:
        gpu=lambda wc: resources(PROFILE.studies[wc.study].resources)["gpu"],
        mem_mb=lambda wc: resources(PROFILE.studies[wc.study].resources)["mem_mb"],
        runtime=lambda wc: resources(PROFILE.studies[wc.study].resources)["runtime"],
        slurm_partition=lambda wc: slurm_partition(PROFILE.studies[wc.study].resources, SLURM_PARTITIONS),
    conda:
        CONDA_ENV
    benchmark:
        f"{BENCH}/run_cell/{{study}}/{{variant}}/seed{{seed}}.tsv"
    log:
        f"{RESULTS}/logs/{{study}}/{{variant}}/seed{{seed}}.log",
    shell:
        f"OMP_NUM_THREADS={{threads}} MKL_NUM_THREADS={{threads}} {PY} -m pipelines.scripts.run_cell {{wildcards.study}} {{wildcards.variant}} {{wildcards.seed}} "
        f"--profile {PROFILE.name} > {{log}} 2>&1"
