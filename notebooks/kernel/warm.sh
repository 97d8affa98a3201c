#!/usr/bin/env bash
# Fills the kernel's build directory (~/.cache/fogkit/cells) with fogkit and its
# dependencies by running one small cell on the "Rust (fogkit)" kernel: afterwards a
# notebook's kernel starts without compiling them. Usage: notebooks/kernel/warm.sh [JUPYTER]
set -euo pipefail
jupyter="${1:-jupyter}"
unset CARGO_TARGET_DIR
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cat > "$scratch/warm.ipynb" <<'JSON'
{"cells": [{"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [],
  "source": ["let ranks = fogkit::run(2, |bf| Ok(bf.rank())).unwrap();\n", "ranks.size()"]}],
 "metadata": {"kernelspec": {"display_name": "Rust (fogkit)", "language": "rust", "name": "fogkit"}},
 "nbformat": 4, "nbformat_minor": 5}
JSON
TMPDIR="$scratch" "$jupyter" nbconvert --to notebook --execute --inplace \
    --ExecutePreprocessor.kernel_name=fogkit --ExecutePreprocessor.timeout=1800 \
    "$scratch/warm.ipynb" >/dev/null 2>&1 || {
    echo "warm.sh: the fogkit kernel could not run a cell" >&2
    exit 1
}
py="$(dirname "$jupyter")/python"
[ -x "$py" ] || py=python3
"$py" - "$scratch/warm.ipynb" <<'PY'
import json, sys
outs = json.load(open(sys.argv[1]))["cells"][0]["outputs"]
text = "".join("".join(o.get("data", {}).get("text/plain", [])) for o in outs).strip()
sys.exit(0 if text == "2" else f"warm.sh: expected the cell to give 2, found {text!r}: {outs}")
PY
