#!/usr/bin/env bash
# The whole test suite, from a fresh machine (Debian, Rust): installs what it needs,
# idempotently, then runs every test (unit, doc, integration, examples, programs).
# Usage: ./tests/run-all.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Build outside the clone so CI reuses it between fresh clones.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fogkit/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"

step() { printf '\n== %s ==\n' "$*"; }

step "toolchain"
cargo --version
rustc --version

step "system packages (Open MPI for the MPI transport)"
# Installed only when missing, so a second run does nothing here.
need=()
for pkg in openmpi-bin libopenmpi-dev libclang-dev clang; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
mpirun --version | head -1
# Open MPI refuses root unless told; CI containers run as root.
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

# One feature set for the lints and tests, so nothing is built twice.
features=(--workspace --features fogkit-tests/mpi,fogkit-tests/metrics)

step "format and lints"
cargo fmt --all -- --check
cargo clippy "${features[@]}" --all-targets --quiet -- -D warnings

step "tests (local transport, and under mpirun)"
# Every test carries its own deadline; this bounds the whole run as well.
timeout 3000 cargo test "${features[@]}" --no-fail-fast

step "benchmarks build"
# Without metrics: an optimized polars takes over 15 minutes to build here.
cargo bench --workspace --features fogkit-tests/mpi --no-run --quiet

echo
echo "all tests passed"
