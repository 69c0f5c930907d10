# Shared by every rule file: validated config, the resolved profile, the python to call.
import json
import os
import sys

from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)

from pipelines.dag import load_profile, resources, slurm_partition  # noqa: E402
from pipelines.scripts.dvc_configs import artifact_configs, cell_configs, config_dir  # noqa: E402
from pipelines.scripts.dvc_metrics import metrics_path, plot_path, summary_path  # noqa: E402

validate(config, "../schemas/params.schema.json")

PROFILE = load_profile(os.environ.get("CIRCADIAN_PROFILE") or config["profile"])
PY = "python"
RESULTS = PROFILE.results
BENCH = f"{RESULTS}/benchmarks"  # one TSV per job (wall time, memory): Snakemake's benchmark directive
SLURM_PARTITIONS = config.get("slurm_partitions") or {}
# `--sdm conda`: the env file names the repository through ${CIRCADIAN_ROOT} (pip expands it), because
# Snakemake copies the file into --conda-prefix (default .snakemake/conda) before conda reads it.
os.environ.setdefault("CIRCADIAN_ROOT", workflow.basedir)
CONDA_ENV = "../envs/circadian.yaml"
