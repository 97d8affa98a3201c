#!/usr/bin/env bash
# Runs fogkit's GPU checks and benchmarks (tests/gpu/bin/gpu_check, built by
# tests/gpu/build.sh) on a GPU machine that has a driver and PyTorch's CUDA 13 wheels but
# no Rust: cuBLAS is taken from PyTorch's nvidia packages, and PyTorch itself is the
# training benchmark's peer (tests/bench/ddp.py --device cuda). Writes the output to
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
    for name in ["libcublas.so.13", "libnvrtc.so.13"]:
        for lib in glob.glob(os.path.join(sp, "nvidia", "**", name), recursive=True):
            dirs.add(os.path.dirname(lib))
print(":".join(sorted(dirs)))
PY
)
if [ -z "$libs" ]; then
    echo "run.sh: expected PyTorch's CUDA 13 wheels (libcublas.so.13, libnvrtc.so.13), found none" >&2
    exit 2
fi
# The headers dfdx's run-time kernels include, where the binary looks for them (paths of
# the build machine, recorded by build.sh).
while read -r name path; do
    if [ ! -e "$path" ]; then
        mkdir -p "$(dirname "$path")" && ln -s "$PWD/tests/gpu/bin/include/$name" "$path" || {
            echo "run.sh: dfdx's run-time kernels read headers from $path; could not create it" >&2
            exit 2
        }
    fi
done < tests/gpu/bin/include/paths
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv \
    > "$out/gpu_machine.txt" 2>&1 || true
LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    timeout 540 tests/gpu/bin/gpu_check "$@" --torch python3 2>&1 | tee "$out/gpu_check.txt"
exit "${PIPESTATUS[0]}"
