#!/usr/bin/env bash
# Runs fogkit's GPU checks and benchmark (tests/gpu/bin/gpu_check, built by
# tests/gpu/build.sh) on a GPU machine that has a driver and PyTorch's CUDA 13 wheels but
# no Rust: cuBLAS is taken from PyTorch's nvidia packages. Writes the output to
# ${OUT:-.}/gpu_check.txt and nvidia-smi's view of the machine beside it; exits as the
# checks do (0: all passed).
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-.}"
if ! command -v python3 >/dev/null; then
    echo "run.sh: needs python3 (with PyTorch's CUDA 13 wheels) to find cuBLAS" >&2
    exit 2
fi
libs=$(python3 - <<'PY'
import glob, os, site, sys
dirs = set()
for sp in site.getsitepackages() + [site.getusersitepackages()]:
    for lib in glob.glob(os.path.join(sp, "nvidia", "**", "libcublas.so.13"), recursive=True):
        dirs.add(os.path.dirname(lib))
print(":".join(sorted(dirs)))
PY
)
if [ -z "$libs" ]; then
    echo "run.sh: expected PyTorch's CUDA 13 wheels (libcublas.so.13), found none" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv \
    > "$out/gpu_machine.txt" 2>&1 || true
LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    timeout 480 tests/gpu/bin/gpu_check "$@" 2>&1 | tee "$out/gpu_check.txt"
exit "${PIPESTATUS[0]}"
