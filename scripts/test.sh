#!/bin/sh
# Runs every test against each build directory given: the unit tests
# (meson test) and the end-to-end tests (the real daemon, over loopback);
# unit:DIR runs only the unit tests of DIR; fuzz:DIR runs each libFuzzer
# harness built in DIR for FUZZ_SECONDS (3) over its corpus, each a test;
# then, once, cppcheck (tools/cppcheck.sh).
# Ends with one line "N passed, N failed" (and ", N skipped" when a test
# skipped itself: a live test without credentials) over all of them; exits non-zero if
# anything failed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
passed=0
failed=0
skipped=0
for build in "$@"; do
	unit_only=0
	case $build in
	unit:*) unit_only=1 build=${build#unit:} ;;
	fuzz:*)
		echo "== fuzzing (${build#fuzz:})"
		out=$(sh "$top/scripts/fuzz.sh" "${build#fuzz:}" \
			"${FUZZ_SECONDS:-3}" 2>&1)
		echo "$out" | grep -v '^fuzz: '
		p=$(echo "$out" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
		f=$(echo "$out" | sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
		if [ -z "$p" ]; then
			failed=$((failed + 1))
		else
			passed=$((passed + p))
			failed=$((failed + f))
		fi
		continue ;;
	esac
	build=$(cd "$build" && pwd)
	echo "== unit tests ($build)"
	out=$(meson test -C "$build" --suite unit --print-errorlogs 2>&1)
	echo "$out" | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Expected Fail|Unexpected Pass|Skipped|Timeout): ' || true
	ok=$(echo "$out" | sed -n 's/^Ok: *\([0-9]*\).*/\1/p')
	bad=$(echo "$out" | sed -n 's/^Fail: *\([0-9]*\).*/\1/p')
	to=$(echo "$out" | sed -n 's/^Timeout: *\([0-9]*\).*/\1/p')
	if [ -z "$ok" ]; then
		echo "$out"
		failed=$((failed + 1))
	else
		passed=$((passed + ok))
		failed=$((failed + ${bad:-0} + ${to:-0}))
		[ "${bad:-0}" -ne 0 ] && echo "$out" | sed -n '/Listing only the last/,$p' | head -200
	fi
	[ "$unit_only" -eq 1 ] && continue
	echo "== end-to-end tests ($build)"
	result=$(mktemp)
	MDSCALE_BIN="$build/src/mdscale" \
	MODEL_SERVER="$build/examples/model-server/mdscale-model-server" \
	MODEL_WEIGHTS="$top/examples/model-server/digits-mlp.weights" \
	MDSCALE_TEST_RESULT="$result" \
		python3 "$top/tests/e2e/run.py" "$top/tests/e2e" "$top/examples/model-server" \
			"$top/tests/standin"
	if [ -s "$result" ]; then
		read -r p f s < "$result"
		passed=$((passed + p))
		failed=$((failed + f))
		skipped=$((skipped + ${s:-0}))
	else
		failed=$((failed + 1))
	fi
	rm -f "$result"
done
# Once, not per build: cppcheck over src/ (tools/cppcheck.sh), one test.
echo "== cppcheck"
if (cd "$top" && sh tools/cppcheck.sh); then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
fi
# Once, not per build: the Debian package, installed on this machine with
# dpkg and purged again (tests/package).
if [ "${MDSCALE_SKIP_PACKAGE:-0}" != 1 ]; then
	echo "== package test"
	result=$(mktemp)
	MDSCALE_TEST_RESULT="$result" python3 "$top/tests/e2e/run.py" \
		"$top/tests/package"
	if [ -s "$result" ]; then
		read -r p f s < "$result"
		passed=$((passed + p))
		failed=$((failed + f))
		skipped=$((skipped + ${s:-0}))
	else
		failed=$((failed + 1))
	fi
	rm -f "$result"
fi

echo
if [ "$skipped" -ne 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
