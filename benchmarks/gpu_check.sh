#!/usr/bin/env bash
# The GPU check (issue 11): on a machine with one NVIDIA GPU and no network, set up the environment,
# run the smoke profile's whole DAG and every GPU benchmark, and write one JSON summary.
#
#   bash benchmarks/prepare_gpu_wheels.sh          # here, once: fills benchmarks/carry/ (ignored by git, ~32 MB)
#   bash benchmarks/gpu_check.sh --out DIR         # there: DIR/gpu_check.json, DIR/bench/*.json, DIR/logs/
#   bash benchmarks/gpu_check.sh --cpu             # here: the same steps at CPU sizes (profile smoke-cpu)
#
# Default DIR: benchmarks/results/<device>/ (commit what a GPU run wrote there). Under the device tool:
#   run(command="GPU_CHECK_COMMIT=<sha> bash benchmarks/gpu_check.sh --out $OUT/gpu_check", carry=["benchmarks/carry"],
#       timeout_s=600)
#
# What the machine must have (DESIGN.md, "The GPU check machine"): python3 with torch, torchvision, peft,
# transformers, pandas, seaborn, scikit-learn. What it lacks comes from benchmarks/carry/:
#   wheels/             snakemake, jsonschema and their dependencies for cp312; only the distributions the
#                       machine does not have are installed (pip --no-index --no-deps), into a venv that sees
#                       the system packages (or, without venv, into a --target folder on PYTHONPATH)
#   smollm2-tokenizer/  SmolLM2's tokenizer ($CIRCADIA_TOKENIZER): the 1.7B-shaped random-init model's
# The four packages install editable (pip --no-deps --no-build-isolation --no-index -e); PYTHONPATH names
# their sources as well, so this tree's code runs even if that install fails (the summary says so).
#
# Time (one H200, estimated from DESIGN.md's measurements; unmeasured until a GPU run): setup ~30 s; the smoke
# DAG ~5-7 min under `snakemake --cores all --resources gpu=4` (limit 400 s: hal 8 cells x ~30 s of one
# CIFAR-sized epoch per scenario at 9k images/s, circadia 5 cells x ~60 s of two nights of 8 steps on the
# 1.7B shape plus its ~50 s build and base eval, plastic 8 and heads 18 cells of ~5-10 s each, 70 cpc cells on
# the CPU cores; 4 jobs share the GPU); then the benchmarks, each skipped when the time left is below its
# estimate (hal 45 s, circadia 1.7B 90 s, heads speed 60 s, heads suite 75 s, circadia 135M 65 s).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

MODE=gpu
OUT=""
BUDGET=570          # seconds for everything (the device tool allows 600 per command)
CARRY=${CARRY:-benchmarks/carry}
PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) MODE=cpu; BUDGET=2400 ;;
    --out) OUT=$2; shift ;;
    --budget-s) BUDGET=$2; shift ;;
    --carry) CARRY=$2; shift ;;
    --skip-smoke|--skip-bench) PASS+=("$1") ;;
    --jobs) PASS+=("--jobs" "$2"); shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
T0=$(date +%s)
COMMAND="bash benchmarks/gpu_check.sh --$MODE ${OUT:+--out $OUT}"
if [ "$MODE" = gpu ]; then PY=${PYTHON:-python3}; else PY=${PYTHON:-python}; fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
SETUP="$WORK/setup.jsonl"
note() { printf '{"step": "%s", "rc": %s, "detail": "%s"}\n' "$1" "$2" "$3" >> "$SETUP"; echo "[gpu_check] $1: rc $2 $3"; }

# 1. a venv that sees the system's packages (and this interpreter's, when it is itself a venv); no pip or
#    setuptools of its own (a seeded old setuptools would shadow the system's): the system pip drives it
VENV="$WORK/venv"
if "$PY" -m venv --system-site-packages --without-pip "$VENV" && "$PY" -m pip --python "$VENV/bin/python" --version >/dev/null 2>&1; then
  VPY="$VENV/bin/python"
  parent=$("$PY" -c 'import sys, sysconfig; print(sysconfig.get_paths()["purelib"] if sys.prefix != sys.base_prefix else "")')
  if [ -n "$parent" ]; then echo "$parent" > "$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_gpu_check_parent.pth"; fi
  PIP=("$PY" -m pip --python "$VPY")
  note venv 0 "$VENV"
else
  VPY="$PY"; PIP=("$PY" -m pip); VENV=""
  note venv 1 "no venv (or a pip without --python): carried wheels go to $WORK/site on PYTHONPATH, packages to the user site"
fi

# 2. carried wheels: only the distributions this Python does not have
WHEELS="$CARRY/wheels"
if [ -d "$WHEELS" ]; then
  mapfile -t MISSING < <("$VPY" - "$WHEELS" <<'PYEOF'
import sys
from importlib import metadata
from pathlib import Path
for w in sorted(Path(sys.argv[1]).glob("*.whl")):
    name = w.name.split("-")[0]
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        print(w)
PYEOF
)
  if [ "$MODE" = cpu ]; then
    # this machine has them all (and runs another Python): check every carried wheel installs on cp312
    "$PY" -m pip install -q --dry-run --ignore-installed --no-index --no-deps --target "$WORK/cp312" \
      --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform any "$WHEELS"/*.whl
    note wheels $? "all $(ls "$WHEELS"/*.whl | wc -l) carried wheels install on cp312 (dry run); missing here: ${#MISSING[@]}"
  elif [ ${#MISSING[@]} -gt 0 ]; then
    if [ -n "$VENV" ]; then "${PIP[@]}" install -q --no-index --no-deps "${MISSING[@]}"; rc=$?
    else "${PIP[@]}" install -q --no-index --no-deps --target "$WORK/site" "${MISSING[@]}"; rc=$?
      export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"; fi
    note wheels $rc "installed ${#MISSING[@]} of $(ls "$WHEELS"/*.whl | wc -l) carried wheels"
  else
    note wheels 0 "every carried distribution is already installed"
  fi
else
  note wheels 1 "$WHEELS not found: run benchmarks/prepare_gpu_wheels.sh here and carry $CARRY"
fi

# 3. the four packages, editable, without network
PKGS=(packages/circadian-core packages/circadian-vision packages/hal-sleep-wake packages/circadia)
if [ -n "$VENV" ]; then USER_FLAG=(); else USER_FLAG=(--user); fi
"${PIP[@]}" install -q "${USER_FLAG[@]}" --no-deps --no-build-isolation --no-index $(printf -- '-e %s ' "${PKGS[@]}") > "$WORK/pip-e.log" 2>&1
note packages $? "pip install -e of ${PKGS[*]} ($(tail -1 "$WORK/pip-e.log" | tr -d '"\\' | cut -c1-200))"

# 4. the environment of every step: this tree's code first, no network, the carried tokenizer
SRC=$(printf '%s/%s/src:' "$ROOT" "${PKGS[@]}")
export PYTHONPATH="$ROOT:${SRC%:}${PYTHONPATH:+:$PYTHONPATH}"
export PATH="${VENV:+$VENV/bin:}$PATH"
export CIRCADIAN_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg TOKENIZERS_PARALLELISM=false
if [ -d "$CARRY/smollm2-tokenizer" ]; then export CIRCADIA_TOKENIZER="$ROOT/$CARRY/smollm2-tokenizer"; fi
if ! command -v python >/dev/null; then mkdir -p "$WORK/bin"; ln -s "$(command -v "$VPY")" "$WORK/bin/python"; export PATH="$WORK/bin:$PATH"; fi
GPU_CHECK_COMMIT=${GPU_CHECK_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
export GPU_CHECK_COMMIT

if [ -z "$OUT" ]; then
  dev=$("$VPY" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")')
  OUT="benchmarks/results/$(echo "$dev" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/-$//')"
  [ "$MODE" = cpu ] && OUT="results/gpu_check/cpu"
fi
mkdir -p "$OUT"
"$VPY" -c 'import json, sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])]))' "$SETUP" > "$OUT/setup.json"
cp "$WORK/pip-e.log" "$OUT/setup-pip-e.log" 2>/dev/null
LEFT=$(( BUDGET - ($(date +%s) - T0) ))
echo "[gpu_check] setup took $(( $(date +%s) - T0 ))s; $LEFT s left"
"$VPY" benchmarks/gpu_check.py --mode "$MODE" --out "$OUT" --budget-s "$LEFT" --setup "$OUT/setup.json" \
  --command "$COMMAND" "${PASS[@]}"
rc=$?
rm -rf "$WORK"
exit $rc
