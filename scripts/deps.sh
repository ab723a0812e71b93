#!/bin/sh
# Installs the Debian packages mdscale needs, if any is missing. Idempotent:
# does nothing (and needs no network) when all are there.
#
#   sh scripts/deps.sh build   to build mdscale (compiler, Meson, -dev files)
#   sh scripts/deps.sh run     to run the daemon and `make run`'s example
#   sh scripts/deps.sh test    to run every test (build + run + test tools)
#   sh scripts/deps.sh deb     to build the Debian package
#   sh scripts/deps.sh lint    to run `make lint` (cppcheck, clang-tidy)
#
# The daemon itself needs only the shared libraries of the build group (the
# .deb names them); Chromium, Prometheus, Alertmanager, tmux, clang (with
# libFuzzer, for fuzz/) and the rest of the test group are for the tests
# alone.
set -eu

BUILD="build-essential meson ninja-build pkg-config python3 \
libuv1-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev libhttp-parser-dev \
libjansson-dev libcmocka-dev libsystemd-dev libyaml-dev libpng-dev \
libcap-ng-dev"
RUN="curl python3 python3-sklearn"
TEST="$BUILD $RUN chromium prometheus prometheus-alertmanager tmux systemd \
dpkg-dev python3-yaml man-db openssl python3-cryptography clang \
libclang-rt-14-dev linux-perf cppcheck"
# libcap-ng-dev: run as root, the daemon drops the capabilities it does not
# need (src/daemon/privs.c). libyaml-dev reads kubeconfig files (src/k8s);
# openssl (the command) and python3-yaml serve the Kubernetes API stand-in (tests/standin/): its
# certificates and the example Role it enforces. python3-cryptography: the
# OCI API stand-in (tests/standin/) verifies request signatures with it.
# clang and its runtime (libFuzzer) build the harnesses of fuzz/; cppcheck
# is one of the tests (scripts/test.sh).
# linux-perf profiles the gateway under load (bench/README.md); the
# benchmarks install nginx, haproxy and wrk themselves.
DEB="$BUILD dpkg-dev"
# clang-tidy (with run-clang-tidy) is make lint's alone: the tests run
# cppcheck but not clang-tidy, which takes minutes.
LINT="$BUILD cppcheck clang-tidy"

PKGS=""
[ $# -eq 0 ] && set -- test
for group in "$@"; do
	case $group in
	build) PKGS="$PKGS $BUILD" ;;
	run) PKGS="$PKGS $RUN" ;;
	test) PKGS="$PKGS $TEST" ;;
	deb) PKGS="$PKGS $DEB" ;;
	lint) PKGS="$PKGS $LINT" ;;
	*) echo "deps: unknown group '$group' (build, run, test, deb, lint)" >&2; exit 2 ;;
	esac
done

missing=""
for p in $PKGS; do
	case " $missing " in *" $p "*) continue ;; esac
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
