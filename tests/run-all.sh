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

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "tests (local transport)"
# Every collective test carries its own deadline; this bounds the whole run as well.
timeout 3000 cargo test --workspace --no-fail-fast

step "benchmarks build"
cargo bench --workspace --no-run --quiet

echo
echo "all tests passed"
