#!/usr/bin/env bash
# LeNet-5 on Fashion-MNIST, 8 in-process ranks: static graphs against their one-peer
# dynamic schedules, same epochs, seeds and step sizes. DecentLaM needs a symmetric W, and
# with momentum over a changing W a positive definite one at every step, so it runs on the
# symmetric exponential graph and the lazy one-peer hypercube; DmSGD runs on BlueFog's
# default, the directed exponential-two graph, and its one-peer schedule. Prints a table of
# the last epoch's test accuracy and bytes sent per rank per step.
#
#     tests/bench/one_peer.sh [EPOCHS]       # default 10
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fogkit/target}"
epochs="${1:-10}"
cargo build --release -p fogkit --example train
train="$CARGO_TARGET_DIR/release/examples/train"
common=(--model lenet --data fashion-mnist --ranks 8 --epochs "$epochs" --batch 64 --lr 0.05 --momentum 0.9 --seed 1)
echo "LeNet-5, Fashion-MNIST, 8 ranks, batch 64 per rank, lr 0.05, momentum 0.9, $epochs epochs, seed 1"
echo
echo "| method | communication | test accuracy (average model) | own models | KiB sent per rank per step |"
echo "|---|---|---:|---:|---:|"
row() {
    local method="$1" label="$2"
    shift 2
    local last
    last="$("$train" "${common[@]}" --method "$method" "$@" | grep '^epoch ' | tail -1)"
    # epoch N: loss L, test accuracy A% (average model), B% (own models), S samples/s, K KiB sent ...
    local acc own kib
    acc="$(sed -E 's/.*test accuracy ([0-9.]+)%.*/\1/' <<<"$last")"
    own="$(sed -E 's/.*, ([0-9.]+)% \(own models\).*/\1/' <<<"$last")"
    kib="$(sed -E 's/.*, ([0-9.]+) KiB sent.*/\1/' <<<"$last")"
    echo "| $method | $label | $acc% | $own% | $kib |"
}
row DecentLaM "static symmetric exponential" --topology symmetric-exponential
row DecentLaM "lazy one-peer hypercube (dynamic)" --communication lazy-one-peer-hypercube
row DmSGD "static exponential-two" --topology exponential-two
row DmSGD "one-peer exponential-two (dynamic)" --communication one-peer-exp2
