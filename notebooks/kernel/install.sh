#!/usr/bin/env bash
# Builds and installs the "Rust (fogkit)" Jupyter kernel for this checkout: fogkit-kernel
# (toolkit/kernel, on the evcxr crate) with fogkit loaded from this repository and its
# prelude in scope before the first cell, so a notebook needs no `:dep` line; beside it
# fogrun, which `:engines N` uses to start N MPI engines. Idempotent: cargo rebuilds only
# what changed, and the kernelspec is rewritten when the checkout moves.
# Usage: notebooks/kernel/install.sh [JUPYTER]   (default: jupyter on PATH)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
jupyter="${1:-jupyter}"
home="${FOGKIT_HOME:-$HOME/.local/share/fogkit}"
target="${FOGKIT_KERNEL_TARGET:-$HOME/.cache/fogkit/kernel-target}"
mkdir -p "$home/bin"
# The kernel has its own lock file (evcxr builds only with the versions it was released
# with); fogrun is fogkit's launcher and needs no MPI to build.
CARGO_TARGET_DIR="$target" cargo build --quiet --release --locked \
    --manifest-path "$repo/toolkit/kernel/Cargo.toml"
CARGO_TARGET_DIR="$target" cargo build --quiet --release \
    --manifest-path "$repo/Cargo.toml" -p fogkit --bin fogrun
for b in fogkit-kernel fogrun; do
    # Replaced, not overwritten: a running kernel keeps its own copy.
    cp "$target/release/$b" "$home/bin/.$b.new" && mv -f "$home/bin/.$b.new" "$home/bin/$b"
done
dir="$("$jupyter" --data-dir)/kernels/fogkit"
mkdir -p "$dir"
rm -rf "$dir/config"
cat > "$dir/kernel.json" <<JSON
{
  "argv": ["$home/bin/fogkit-kernel", "--connection-file", "{connection_file}"],
  "display_name": "Rust (fogkit)",
  "language": "rust",
  "interrupt_mode": "message",
  "env": {"FOGKIT_TOOLKIT": "$repo/toolkit"}
}
JSON
echo "kernel \"Rust (fogkit)\" (fogkit) in $dir: $home/bin/fogkit-kernel, fogkit from $repo/toolkit"
