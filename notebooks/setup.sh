#!/usr/bin/env bash
# Sets up the course notebooks on a fresh Debian machine with Rust, idempotently: Jupyter
# (JupyterLab, nbconvert, and plotly's JupyterLab extension, so figures are interactive) in
# a virtual environment of its own (no system pip: Debian's Python is externally managed),
# the "Rust (fogkit)" kernel (toolkit/kernel, on the evcxr crate), Open MPI (for its MPI
# engines, `:engines 4`), the lld linker, Chromium (for the figures' PNGs), and, unless
# --no-warm, the kernel's build directory filled with fogkit's dependencies, so the first
# notebook does not compile them. Prints how to open the notebooks.
#
# Usage: notebooks/setup.sh [--no-warm]
# Environment: FOGKIT_VENV (default ~/.local/share/fogkit/venv), where Jupyter goes.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
warm=1
for a in "$@"; do
    case "$a" in
    --no-warm) warm=0 ;;
    *) echo "setup.sh: unknown option $a (expected --no-warm)" >&2; exit 2 ;;
    esac
done
venv="${FOGKIT_VENV:-$HOME/.local/share/fogkit/venv}"
say() { printf '\n== %s ==\n' "$*"; }

say "system packages (Python's venv, Open MPI for the engines, the lld linker, Chromium)"
"$repo/tests/apt-install.sh" python3-venv openmpi-bin libopenmpi-dev libclang-dev clang lld \
    chromium

say "Jupyter in $venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import jupyterlab, nbconvert, nbclient, ipykernel, plotly" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        jupyterlab nbconvert nbclient ipykernel plotly
fi
"$venv/bin/jupyter" --version | grep -E "jupyterlab|nbconvert" | tr -s ' '

say "the Rust (fogkit) kernel (its first build takes about 10 minutes, once)"
sysroot="$(rustc --print sysroot)"
[ -d "$sysroot/lib/rustlib/src/rust/library" ] || rustup component add rust-src
"$repo/notebooks/kernel/install.sh" "$venv/bin/jupyter"

if [ "$warm" = 1 ]; then
    say "build directory (fogkit's dependencies compiled once into ~/.cache/fogkit/cells)"
    start=$(date +%s)
    "$repo/notebooks/kernel/warm.sh" "$venv/bin/jupyter"
    echo "warm in $(( $(date +%s) - start )) s"
fi

cat <<EOF

Ready. Open the course with
    $venv/bin/jupyter lab $repo/notebooks/
and pick a chapter; its kernel is "Rust (fogkit)".
EOF
