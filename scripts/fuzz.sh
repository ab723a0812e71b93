#!/bin/sh
# Runs every libFuzzer harness of fuzz/ (built in DIR, see `make build-fuzz`)
# for SECONDS each, over its corpus fuzz/corpus/NAME (fuzz_NAME).
#
#   sh scripts/fuzz.sh DIR SECONDS        the short runs of make test: new
#                                         inputs go to a temporary directory
#   sh scripts/fuzz.sh DIR SECONDS keep   make fuzz: new inputs that reach new
#                                         code are added to fuzz/corpus/NAME
#
# One line per harness (executions, corpus size, result); a crash leaves its
# input in DIR/fuzz/crash-* and libFuzzer's report in DIR/fuzz/NAME.log.
# Ends with "fuzz: N passed, N failed"; exits non-zero if any failed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$(cd "$1" && pwd)/fuzz
secs=$2
keep=${3:-}
passed=0
failed=0
for exe in "$dir"/fuzz_*; do
	case $exe in *.log) continue ;; esac
	[ -f "$exe" ] && [ -x "$exe" ] || continue
	name=$(basename "$exe")
	corpus="$top/fuzz/corpus/${name#fuzz_}"
	mkdir -p "$corpus"
	if [ "$keep" = keep ]; then
		out=$corpus
		seeds=""
	else
		out=$(mktemp -d)
		seeds=$corpus
	fi
	log="$dir/$name.log"
	# shellcheck disable=SC2086
	(cd "$dir" && "$exe" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 "$out" $seeds) \
		>"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	units=$(ls "$out" | wc -l)
	[ "$keep" = keep ] || rm -rf "$out"
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "fuzz $name: ok, ${runs:-0} executions in ${secs}s," \
			"$units inputs kept or found"
	else
		failed=$((failed + 1))
		echo "fuzz $name: FAILED after ${runs:-?} executions (see $log):"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -5
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
