#!/bin/sh
# make run: starts the daemon (unless one already answers), creates the
# example deployment "digits" (the example model server) if it is missing,
# prints what to do next, and stays in the foreground: Ctrl-C stops the
# daemon and its instances.
#
# For tests: MDSCALE_LISTEN, MDSCALE_GATEWAY (ADDR:PORT) and MDSCALE_DATA
# (the data directory) override the example configuration's addresses and the
# default data directory.
set -eu
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
case $build in
/*) bdir=$build ;;
*) bdir=$top/$build ;;
esac
bin="$bdir/src/mdscale"
listen=${MDSCALE_LISTEN:-127.0.0.1:7070}
gateway=${MDSCALE_GATEWAY:-127.0.0.1:8080}
url=${MDSCALE_URL:-http://$listen}
export MDSCALE_URL="$url"

# Run as root, the daemon gives instances, functions and COMMAND
# subscriptions uids of their own from instanceUids, or runs them as the
# user "mdscale" (runAsUser) when that is off; it refuses to start without
# that user: create it if missing.
if [ "$(id -u)" = 0 ] && ! getent passwd mdscale >/dev/null; then
	adduser --system --group --no-create-home --home /nonexistent \
		--quiet mdscale
fi

pid=""
if curl -fsS "$url/v1/health" >/dev/null 2>&1; then
	echo "mdscale: a daemon already answers at $url; using it"
else
	"$bin" serve --config "$top/examples/mdscale.json" \
		--listen "$listen" --gateway "$gateway" &
	pid=$!
	# Ctrl-C in the terminal sends SIGINT to the whole foreground process
	# group: the daemon has it already, so the shell only waits for its
	# graceful stop (a second signal would cut that short). A TERM sent to
	# this script alone is passed on.
	trap 'wait $pid; exit $?' INT
	trap 'kill -TERM $pid 2>/dev/null; wait $pid' TERM
	i=0
	until curl -fsS "$url/v1/health" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
			echo "mdscale: the daemon did not start" >&2
			exit 1
		fi
		sleep 0.1
	done
fi

if ! "$bin" deployment get digits >/dev/null 2>&1; then
	"$bin" deployment create --name digits --shape local.xs --count 1 \
		--command "exec '$bdir/examples/model-server/mdscale-model-server' --weights '$top/examples/model-server/digits-mlp.weights' --port \$PORT" \
		--wait
fi
"$bin" deployment get digits

row=$(python3 -c 'import gzip; print(gzip.open("/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz","rt").readline().strip().rsplit(",",1)[0])')
cat <<MSG

mdscale is running: API $url, gateway http://$gateway

Send a prediction (a handwritten 0 from the digits data set):
  curl -s http://$gateway/digits/predict -d '{"instances": [[$row]]}'

Scale out, then change shape, with zero downtime:
  $build/src/mdscale deployment update digits --count 3 --wait
  $build/src/mdscale deployment update digits --shape local.s --wait
  $build/src/mdscale deployment get digits
  $build/src/mdscale workrequest list --deployment digits

MSG
if [ -n "$pid" ]; then
	echo "Ctrl-C stops the daemon and its instances."
	wait $pid
fi
