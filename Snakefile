# The reproduction workflow. params.yaml is its config; pipelines/dag.py turns it into cells.
#   snakemake --cores all                       everything for params.yaml's profile (the paper PDF)
#   snakemake --cores 1 results/mini/runs/cpc_shift/strength-pc/seed3.json   one cell
#   snakemake --profile pipelines/profiles/slurm   the same DAG on a SLURM cluster
# Pick another profile with `--config profile=paper` or CIRCADIAN_PROFILE=paper.

configfile: "params.yaml"


include: "pipelines/rules/common.smk"


rule all:
    input:
        PROFILE.pdf,
        f"{RESULTS}/targets.json",


include: "pipelines/rules/artifacts.smk"
include: "pipelines/rules/runs.smk"
include: "pipelines/rules/report.smk"
include: "pipelines/rules/paper.smk"
