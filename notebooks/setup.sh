#!/usr/bin/env bash
# Sets up the course notebooks on a fresh Debian machine with Rust, idempotently: Jupyter
# (JupyterLab, nbconvert, and plotly's JupyterLab extension, so figures are interactive) in
# a virtual environment of its own (no system pip: Debian's Python is externally managed),
# the evcxr kernel, the "Rust (fogkit)" kernel, the lld linker, Chromium (for the figures'
# PNGs), and, unless --no-warm, a build cache filled with fogkit's dependencies so the first
# notebook starts in seconds. Prints how to open the notebooks.
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

say "system packages (Python's venv, the lld linker, Chromium)"
"$repo/tests/apt-install.sh" python3-venv lld chromium

say "Jupyter in $venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import jupyterlab, nbconvert, nbclient, ipykernel, plotly" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        jupyterlab nbconvert nbclient ipykernel plotly
fi
"$venv/bin/jupyter" --version | grep -E "jupyterlab|nbconvert" | tr -s ' '

say "the evcxr kernel and the Rust (fogkit) kernel"
sysroot="$(rustc --print sysroot)"
[ -d "$sysroot/lib/rustlib/src/rust/library" ] || rustup component add rust-src
if ! command -v evcxr_jupyter >/dev/null; then
    # 0.22.0 with its own lock file: about 5 minutes, once.
    cargo install evcxr_jupyter --locked --version 0.22.0
fi
kernels="$("$venv/bin/jupyter" kernelspec list --json)"
has() { "$venv/bin/python" -c "import json,sys; sys.exit(0 if '$1' in json.load(sys.stdin)['kernelspecs'] else 1)" <<<"$kernels"; }
has rust || evcxr_jupyter --install
# "Rust (fogkit)": evcxr with fogkit loaded and its prelude in scope before the first cell
# (notebooks/kernel/: the start-up commands and the prelude; see its README).
"$repo/notebooks/kernel/install.sh" "$venv/bin/jupyter"

if [ "$warm" = 1 ]; then
    say "build cache (fogkit's dependencies compiled once into ~/.cache/evcxr)"
    start=$(date +%s)
    "$repo/notebooks/kernel/warm.sh" "$venv/bin/jupyter"
    echo "warm in $(( $(date +%s) - start )) s"
fi

cat <<EOF

Ready. Open the course with
    $venv/bin/jupyter lab $repo/notebooks/
and pick a chapter; its kernel is "Rust (fogkit)".
EOF
