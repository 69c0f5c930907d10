# Shared by every rule file: validated config, the resolved profile, the python to call.
import json
import os
import sys

from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)

from pipelines.dag import load_profile, resources, slurm_partition  # noqa: E402

validate(config, "../schemas/params.schema.json")

PROFILE = load_profile(os.environ.get("CIRCADIAN_PROFILE") or config["profile"])
PY = "python"
RESULTS = PROFILE.results
SLURM_PARTITIONS = config.get("slurm_partitions") or {}
CONDA_ENV = "../envs/circadian.yaml"

