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

step "system packages (Open MPI for the MPI transport, iproute2 for the test hosts, Chromium for notebook pictures, Fashion-MNIST)"
# Installed only when missing, so a second run does nothing here.
./tests/apt-install.sh openmpi-bin libopenmpi-dev libclang-dev clang iproute2 chromium \
    dataset-fashion-mnist
mpirun --version | head -1
# Open MPI refuses root unless told; CI containers run as root. As root the several-hosts
# tests (network namespaces) must run, not skip.
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export FOGKIT_REQUIRE_HOSTS=1
fi

step "notebook toolchain (Jupyter in a venv, the Rust (fogkit) kernel: notebooks/setup.sh)"
# The course's own set-up, without its cache warm-up (the notebook tests warm the cache).
./notebooks/setup.sh --no-warm
export PATH="${FOGKIT_VENV:-$HOME/.local/share/fogkit/venv}/bin:$PATH"

step "the book's tools (mdBook and mdbook-katex)"
if ! command -v mdbook >/dev/null; then
    cargo install mdbook --locked --version 0.5.4
fi
if ! command -v mdbook-katex >/dev/null; then
    # The book's math, typeset as MathML at build time (under a minute, once).
    cargo install mdbook-katex --locked --version 0.10.0
fi
mdbook --version

# One feature set for the lints and tests, so nothing is built twice.
features=(--workspace --features fogkit-tests/mpi,fogkit-tests/metrics,fogkit/serde)

# The kernel (toolkit/kernel) is a workspace of its own, built where setup.sh built it.
kernel=(--manifest-path toolkit/kernel/Cargo.toml --release --locked)
kernel_target="${FOGKIT_KERNEL_TARGET:-$HOME/.cache/fogkit/kernel-target}"

step "format and lints"
cargo fmt --all -- --check
cargo fmt --manifest-path toolkit/kernel/Cargo.toml -- --check
cargo clippy "${features[@]}" --all-targets --quiet -- -D warnings
CARGO_TARGET_DIR="$kernel_target" cargo clippy "${kernel[@]}" --all-targets --quiet -- -D warnings

step "each of fogkit's output features builds on its own (frames, figures, progress)"
for feature in frames figures progress; do
    cargo clippy -p fogkit --features "$feature" --all-targets --quiet -- -D warnings
done

step "the declared minimum Rust (rust-version 1.81) builds fogkit (default, mpi and serde features)"
if ! cargo +1.81 --version >/dev/null 2>&1; then
    rustup toolchain install 1.81 --profile minimal
fi
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/msrv" cargo +1.81 check -p fogkit --locked --features mpi,serde --quiet

step "the API documentation (cargo doc; a warning, a broken link or an undocumented item fails)"
RUSTDOCFLAGS="-D warnings" cargo doc -p fogkit --no-deps --features metrics,serde --quiet

step "the kernel's own tests"
CARGO_TARGET_DIR="$kernel_target" cargo test "${kernel[@]}"

step "the window cores under Miri (the nightly toolchain's miri, installed once)"
# Miri runs the local transport's regions and the MPI transport's shared-memory locks
# on real threads and fails on any data race or bad pointer (tests/window-core).
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal --component miri,rust-src
fi
cargo +nightly miri setup </dev/null
cargo +nightly miri test -p fogkit-window-core

step "tests (local transport, under mpirun, notebooks, the book)"
# Missing notebook tools fail the notebook tests here instead of skipping them.
export FOGKIT_REQUIRE_NOTEBOOKS=1
# Every test carries its own deadline; this bounds the whole run as well. The first run
# on a machine compiles fogkit's dependencies into evcxr's cache (~/.cache/evcxr).
timeout 4200 cargo test "${features[@]}" --no-fail-fast

step "benchmarks build"
# Without metrics: an optimized polars takes over 15 minutes to build here.
cargo bench --workspace --features fogkit-tests/mpi --no-run --quiet

echo
echo "all tests passed"
