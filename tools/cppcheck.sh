#!/bin/sh
# cppcheck.sh - cppcheck over src/: warnings and portability findings, with
# jansson's iteration macros read from tools/cppcheck-jansson.cfg. A
# finding that is not a bug is restructured away or, where that would hurt,
# suppressed inline with its reason (// cppcheck-suppress ID).
# Run from the top of the tree; prints each finding and exits 1 on any.
set -u
exec cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	--inline-suppr --library=tools/cppcheck-jansson.cfg -I src src
