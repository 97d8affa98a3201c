#!/usr/bin/env bash
# Builds fogkit's GPU checks (tests/gpu/check.rs, feature `cuda`) on a machine without a GPU
# or a CUDA toolkit, from PyPI's CUDA 13.0 wheels, and puts the binary in tests/gpu/bin/
# (git-ignored) for tests/gpu/run.sh on a GPU machine. Idempotent; about 1.1 GB of wheels
# once, in ~/.cache/fogkit/cuda-venv.
#
# What dfdx 0.13's `cuda` feature needs at build time, and where it comes from here:
# - nvcc, CUDA's headers and CCCL's (`nv/target`): the nvidia-cuda-nvcc, -crt, -nvvm,
#   -runtime and -cccl wheels, pinned to 13.0 so that a 13.0 driver accepts the PTX.
# - cublas, cublasLt and nvrtc to link against: their wheels (libcublas.so.13 ...), with
#   the unversioned names the linker looks for.
# - libcuda, which only a driver installs: a link stub made here from the driver calls
#   cudarc 0.9 declares (each returns CUDA_ERROR_NO_DEVICE); it is named libcuda.so, so
#   the loader never picks it for libcuda.so.1 at run time.
# - nvidia-smi, which dfdx's build script asks for the compute capability: a stand-in that
#   prints FOGKIT_CUDA_COMPUTE_CAP (default 9.0, the H200's).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${FOGKIT_CUDA_VENV:-$HOME/.cache/fogkit/cuda-venv}"
root="${FOGKIT_CUDA_ROOT:-$HOME/.cache/fogkit/cuda-root}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fogkit/target}"
wheels=(nvidia-cuda-nvcc nvidia-cuda-crt nvidia-nvvm nvidia-cuda-runtime nvidia-cuda-cccl
    nvidia-cuda-nvrtc nvidia-cublas)
if ! "$venv/bin/python" -c 'import nvidia' 2>/dev/null \
    || [ ! -x "$venv/lib/python3"*/site-packages/nvidia/cu13/bin/nvcc ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${wheels[@]/%/==13.0.*}"
fi
cu13=$(echo "$venv"/lib/python3*/site-packages/nvidia/cu13)
mkdir -p "$root/lib" "$root/shim"
for d in include bin nvvm; do ln -sfn "$cu13/$d" "$root/$d"; done
for l in "$cu13"/lib/lib*.so.*; do
    b=$(basename "$l")
    ln -sf "$l" "$root/lib/$b"
    ln -sf "$l" "$root/lib/${b%%.so.*}.so"
done
cudarc=$(cargo metadata --format-version 1 --locked --features fogkit-tests/cuda 2>/dev/null \
    | python3 -c 'import json,sys; print([p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cudarc"][0])')
grep -oE 'pub fn (cu[A-Za-z0-9_]+)\(' "$(dirname "$cudarc")/src/driver/sys.rs" \
    | sed 's/pub fn //; s/(//' | sort -u \
    | sed 's/.*/int &(void) { return 100; }/' > "$root/shim/libcuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/lib/libcuda.so" "$root/shim/libcuda_stub.c"
cat > "$root/shim/nvidia-smi" <<'SMI'
#!/bin/sh
# Build-time stand-in: dfdx 0.13's build script asks nvidia-smi for the compute capability.
echo compute_cap
echo "${FOGKIT_CUDA_COMPUTE_CAP:-9.0}"
SMI
chmod +x "$root/shim/nvidia-smi"
# dfdx's build script reads CUDA_PATH before CUDA_ROOT, and reruns on CUDA_COMPUTE_CAP only.
unset CUDA_PATH
cap="${FOGKIT_CUDA_COMPUTE_CAP:-9.0}"
export CUDA_ROOT="$root" PATH="$root/shim:$root/bin:$PATH" CUDA_COMPUTE_CAP="${cap//./}"
cargo build --release --locked -p fogkit-tests --features cuda --bin gpu_check
mkdir -p tests/gpu/bin
cp "$CARGO_TARGET_DIR/release/gpu_check" tests/gpu/bin/gpu_check
# dfdx compiles some kernels with NVRTC at run time (concatenation, strided copies,
# stack's backward), with include paths fixed at build time: CUDA's include directory
# (for cuda_fp16.h) and its build directory (for its .cuh files). Carry those headers, and
# the two paths, for run.sh to put them where the binary looks.
out_dir=$(grep -a -o "$CARGO_TARGET_DIR/release/build/dfdx-[0-9a-f]*/out" tests/gpu/bin/gpu_check | sort -u)
if [ "$(echo "$out_dir" | wc -l)" != 1 ] || [ ! -f "$out_dir/cuda_utils.cuh" ]; then
    echo "build.sh: expected one dfdx build directory with cuda_utils.cuh in the binary, found: $out_dir" >&2
    exit 1
fi
inc=tests/gpu/bin/include
rm -rf "$inc"
mkdir -p "$inc/cuda" "$inc/dfdx"
cp "$root"/include/cuda_fp16.h "$root"/include/cuda_fp16.hpp "$inc/cuda/"
cp "$out_dir"/*.cuh "$inc/dfdx/"
printf 'cuda %s\ndfdx %s\n' "$root/include" "$out_dir" > "$inc/paths"
dfdx_src=$(cargo metadata --format-version 1 --locked --features fogkit-tests/cuda 2>/dev/null \
    | python3 -c 'import json,sys,os; print([os.path.dirname(p["manifest_path"]) for p in json.load(sys.stdin)["packages"] if p["name"]=="dfdx"][0])')
LD_LIBRARY_PATH="$cu13/lib" python3 tests/gpu/nvrtc_check.py "$cu13/lib/libnvrtc.so.13" \
    "$dfdx_src" "$inc/cuda" "$inc/dfdx"
echo "built tests/gpu/bin (gpu_check and the headers it compiles against); on a GPU machine: tests/gpu/run.sh"
