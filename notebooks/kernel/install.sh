#!/usr/bin/env bash
# Installs the "Rust (fogkit)" Jupyter kernel for this checkout: evcxr_jupyter started with
# its configuration directory pointed at fogkit's (EVCXR_CONFIG_DIR), whose init.evcxr loads
# fogkit from this repository and whose prelude.rs brings fogkit's prelude into scope, so a
# notebook needs no `:dep` line. Idempotent; rewrites the kernel when the checkout moves.
# Usage: notebooks/kernel/install.sh [JUPYTER]   (default: jupyter on PATH)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
jupyter="${1:-jupyter}"
evcxr="$(command -v evcxr_jupyter || true)"
if [ -z "$evcxr" ]; then
    echo "install.sh: evcxr_jupyter is not on PATH (notebooks/setup.sh installs it)" >&2
    exit 1
fi
dir="$("$jupyter" --data-dir)/kernels/fogkit"
mkdir -p "$dir/config"
sed "s|@TOOLKIT@|$repo/toolkit|" "$here/init.evcxr" > "$dir/config/init.evcxr"
cp "$here/prelude.rs" "$dir/config/prelude.rs"
cat > "$dir/kernel.json" <<JSON
{
  "argv": ["$evcxr", "--control_file", "{connection_file}"],
  "display_name": "Rust (fogkit)",
  "language": "rust",
  "interrupt_mode": "message",
  "env": {"EVCXR_CONFIG_DIR": "$dir/config"}
}
JSON
echo "kernel \"Rust (fogkit)\" (fogkit) in $dir, fogkit from $repo/toolkit"
