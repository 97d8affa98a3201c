#!/usr/bin/env bash
# Training throughput, fogkit (in-process and MPI) next to PyTorch DDP, in one run.
# Installs torch and numpy into a virtual environment outside the clone (about 5.4 GB, once;
# the benchmark only: the test set-up never installs torch), builds, and prints the table.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fogkit/target}"
venv="${FOGKIT_TORCH_VENV:-$HOME/.cache/fogkit/torch-venv}"
if ! "$venv/bin/python" -c "import torch, numpy" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check torch numpy
fi
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
cargo build --release -p fogkit --bin fogrun
cargo build --release -p fogkit-tests --features mpi --bin train_bench
FOGKIT_TORCH_PYTHON="$venv/bin/python" "$CARGO_TARGET_DIR/release/train_bench" "$@"
