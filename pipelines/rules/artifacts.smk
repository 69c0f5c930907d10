# One rule per artifact of the profile (a converted model, a feature cache, a trained backbone).
from pathlib import Path

for _art in PROFILE.artifacts.values():

    rule:
        name:
            f"artifact_{_art.name}"
        input:
            PROFILE.artifact_paths(_art.needs),
        output:
            directory(_art.out) if Path(_art.out).suffix == "" else _art.out,
        params:
            config=json.dumps(_art.config, sort_keys=True),
            # bound now: Snakemake re-evaluates the shell f-string when the job runs, by which time
            # the loop variable _art names the LAST artifact
            name=_art.name,
        threads: resources(_art.resources)["threads"]
        # artifacts first: the converted LLM and its base scores gate the longest cells (circadia)
        priority: 50
        resources:
            gpu=resources(_art.resources)["gpu"],
            mem_mb=resources(_art.resources)["mem_mb"],
            runtime=resources(_art.resources)["runtime"],
            slurm_partition=slurm_partition(_art.resources, SLURM_PARTITIONS),
        conda:
            CONDA_ENV
        benchmark:
            f"{BENCH}/artifact-{_art.name}.tsv"
        log:
            f"{RESULTS}/logs/artifact-{_art.name}.log",
        shell:
            f"{PY} -m pipelines.scripts.build_artifact {{params.name}} --profile {PROFILE.name} > {{log}} 2>&1"
