"""Compiles, with NVRTC and no GPU, the kernels dfdx 0.13 compiles at run time (concat,
concat_along, reshape_to, stack), against only the headers tests/gpu/build.sh carries to the
GPU machine: if they are not enough, the GPU run would panic at its first convolution.

    python nvrtc_check.py LIBNVRTC DFDX_SRC INCLUDE_DIR... ; exits 1 if any kernel fails
"""

import ctypes
import pathlib
import re
import sys


def kernels(dfdx_src):
    """(name, CUDA source) of each kernel string in the ops that NVRTC builds at run time."""
    for op in ["concat", "concat_along", "reshape_to", "stack"]:
        text = (pathlib.Path(dfdx_src) / "src/tensor_ops" / op / "cuda_kernel.rs").read_text()
        for m in re.finditer(r'const (\w+): &str = "(.*?)";\n', text, re.S):
            body = m.group(2).replace('\\"', '"').replace("\\\\", "\\")
            yield f"{op}/{m.group(1)}", body.replace("$Ty", "float").replace("$T", "float")


def compile_ptx(lib, source, options):
    prog = ctypes.c_void_p()
    if lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"k.cu", 0, None, None):
        return "nvrtcCreateProgram failed"
    opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
    result = lib.nvrtcCompileProgram(prog, len(options), opts)
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    return None if result == 0 else log.value.decode(errors="replace").strip()


def main():
    lib = ctypes.CDLL(sys.argv[1])
    options = ["--gpu-architecture=sm_90"] + [f"-I{d}" for d in sys.argv[3:]]
    found = failed = 0
    for name, source in kernels(sys.argv[2]):
        found += 1
        error = compile_ptx(lib, source, options)
        if error:
            failed += 1
            print(f"nvrtc_check: {name} does not compile with the carried headers:\n{error}")
    if found == 0:
        print("nvrtc_check: expected dfdx's run-time kernels in its source, found none")
        sys.exit(1)
    print(f"nvrtc_check: {found - failed} of {found} run-time kernels compile with the carried headers")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
