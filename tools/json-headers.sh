#!/bin/sh
# json-headers.sh - JSON stays at the edges: no module header outside them
# names json_t or includes jansson.h.
#
# The edges are the API (src/api/), the store (src/store/), the
# configuration loader (src/daemon/config.h) and the CLI (src/cli/). The
# alarm message is JSON by definition, but a module passes it on as text.
# A module header is one that another folder includes: the headers a module
# keeps to itself (a platform client's, whose wire format is JSON, such as
# src/k8s/k8s_client.h) are its own business.
# Run from the top of the tree; prints each offending line and exits 1.
set -u

edge() {
	case "$1" in
	src/api/*|src/store/*|src/daemon/config.h|src/cli/*) return 0 ;;
	esac
	return 1
}

status=0
# Is header h (src/DIR/NAME.h) included from outside src/DIR?
shared() {
	dir=${1%/*}
	rel=${1#src/}
	grep -rlF "#include \"$rel\"" src --include='*.c' --include='*.h' |
		grep -qv "^$dir/"
}

for h in $(find src -name '*.h' | sort); do
	edge "$h" && continue
	shared "$h" || continue
	if out=$(grep -nE \
		'\bjson_t\b|#[[:space:]]*include[[:space:]]*<jansson\.h>' "$h")
	then
		printf '%s\n' "$out" | sed "s|^|$h:|"
		status=1
	fi
done
if [ "$status" -ne 0 ]; then
	echo "json-headers: the headers above expose JSON outside the edges" \
		"(src/api, src/store, src/daemon/config.h, src/cli)" >&2
fi
exit "$status"
