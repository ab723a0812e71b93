#!/bin/sh
# bench/run.sh [BUILD] - every benchmark, one after the other (`make bench`).
# Each runs even if one before it failed; the exit status is non-zero if
# any did. To add a benchmark, add a `bench NAME COMMAND...` line below.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
failed=""

bench() {
	name=$1
	shift
	echo "== bench: $name"
	"$@" || failed="$failed $name"
}

bench gateway sh "$top/bench/gateway.sh" "$build"
bench monitoring "$build/bench/bench_monitoring" -n 5
bench reaction python3 "$top/bench/reaction.py" "$build"
bench zero_downtime python3 "$top/bench/zero_downtime.py" "$build"
bench footprint python3 "$top/bench/footprint.py" "$build"
bench timeline python3 "$top/bench/timeline.py" "$build"
bench volume python3 "$top/bench/volume.py" "$build"

if [ -n "$failed" ]; then
	echo "bench: failed:$failed" >&2
	exit 1
fi
