#!/bin/sh
# train.sh - regenerates digits-mlp.weights, the committed weights of the
# example model server, from scikit-learn's digits data (Debian's
# python3-sklearn ships it).
#
#   examples/model-server/train.sh [TRAINER]
#
# TRAINER is a built mdscale-train (build/examples/model-server/mdscale-train);
# without one the script compiles train.c and mlp.c itself with
# cc -std=c11 -O2 -ffp-contract=off. Training is deterministic: a fixed seed
# for the one PRNG, every sum in a fixed order, no contracted multiply-adds,
# little-endian output. With gcc 12 on x86-64 and glibc (Debian 12) it
# reproduces the committed file byte for byte; its SHA-256 is in README.md.
# Environment: DIGITS_CSV overrides the path of digits.csv.gz.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
data=${DIGITS_CSV:-/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz}
trainer=${1:-}
tmp=

cleanup() {
	if [ -n "$tmp" ]; then
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

if [ ! -r "$data" ]; then
	echo "train.sh: $data not found (apt-get install python3-sklearn)" >&2
	exit 1
fi
if [ -z "$trainer" ]; then
	tmp=$(mktemp -d)
	trainer=$tmp/mdscale-train
	${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -ffp-contract=off \
		-I"$root/src" -o "$trainer" \
		"$here/train.c" "$here/mlp.c" \
		"$root/src/util/xalloc.c" "$root/src/util/err.c" -lm
fi
gzip -dc "$data" | "$trainer" --out "$here/digits-mlp.weights"
sha256sum "$here/digits-mlp.weights"
