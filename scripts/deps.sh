#!/bin/sh
# Installs the Debian packages mdscale needs to build, test and run, if any is
# missing. Idempotent: does nothing (and needs no network) when all are there.
set -eu

PKGS="build-essential meson ninja-build pkg-config \
libuv1-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev libhttp-parser-dev \
libjansson-dev libcmocka-dev python3 python3-sklearn curl chromium \
prometheus tmux"
# Test only: the OCI API stand-in (tests/standin/) verifies request
# signatures with it.
PKGS="$PKGS python3-cryptography"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
