#!/usr/bin/env bash
# Executes the chapter notebooks in place (their committed outputs) and writes their
# figures as PNGs into tutorials/src/figures (the course book's pictures).
# Usage: notebooks/execute.sh [ch02_average_consensus.ipynb ...]   (default: all of them)
# Needs Jupyter, the Rust (fogkit) kernel, Open MPI and Chromium: notebooks/setup.sh installs them.
set -euo pipefail
cd "$(dirname "$0")"
# setup.sh's Jupyter, when there is one; the fogkit kernel for this checkout.
venv="${FOGKIT_VENV:-$HOME/.local/share/fogkit/venv}"
[ -x "$venv/bin/jupyter" ] && export PATH="$venv/bin:$PATH"
./kernel/install.sh >/dev/null
# evcxr runs its own cargo; an inherited target directory would be shared with (and
# locked by) other builds.
unset CARGO_TARGET_DIR
export FOGKIT_FIGURES="$PWD/../tutorials/src/figures"
mkdir -p "$FOGKIT_FIGURES"
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=(ch0*.ipynb engines_*.ipynb)
# evcxr leaves its build directory (gigabytes) behind when a kernel is shut down: give the
# kernels their own TMPDIR and remove it on the way out.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for nb in "${notebooks[@]}"; do
    start=$(date +%s)
    TMPDIR="$scratch" jupyter nbconvert --to notebook --execute --inplace \
        --ExecutePreprocessor.kernel_name=fogkit --ExecutePreprocessor.timeout=2400 "$nb"
    if grep -q "panicked at" "$nb"; then
        echo "$nb: a cell panicked" >&2
        exit 1
    fi
    echo "$nb: $(( $(date +%s) - start )) s"
done
