#!/bin/sh
# bench/gateway.sh [BUILD] - mdscale's gateway against nginx and HAProxy.
#
# For each worker count W in BENCH_WORKERS ("1 2"), the three proxies run
# with W workers (mdscale gatewayThreads W, nginx worker_processes W,
# HAProxy nbthread W) in front of the same two mdscale-bench-backend
# processes on loopback (the instances of mdscale's deployment, see
# start_mdscale), least-outstanding / least-connections balancing, upstream
# keep-alive. Every proxy of every W runs from the start, idle until its
# turn. Per W and per peer, alternating the order each round, the median
# kept:
#   1. maximum throughput: wrk -tW -c64 -d5s (closed loop), TPUT_ROUNDS
#      rounds (the figure moves by a third from one round to the next on a
#      shared machine: more, shorter rounds make a steadier median);
#   2. latency: `mdscale load` open loop for 10 s at 50% of the LOWEST of
#      the three maxima of that W, 64 connections, ROUNDS rounds: p50 and
#      p99 from the due time.
# Each figure is also given as a ratio to nginx's and HAProxy's of the same
# W. BENCH_SWEEP=1 adds, per peer, the highest `mdscale load` rate with p99
# < 50 ms and no failure: the same steps for every peer of a W (40%, 50%,
# ... 130% of that W's highest median maximum), 5 s each, one round,
# stopping at the first step that misses.
#
# Nothing is pinned: the proxy, the backends and the load generator share
# the machine's cores. Prints a table and writes the raw figures to
# bench/results/gateway.json (and gateway.svg when gnuplot is there).
# Installs nginx, haproxy, wrk and gnuplot from Debian when missing (root).
# Every server listens on 127.0.0.1, on free ports, and stops by itself
# after BENCH_LIFETIME seconds even if this script is killed.
#
# Last, with BENCH_ALARMS > 0, the latency rounds again, for mdscale and
# nginx with the first W of BENCH_WORKERS, after BENCH_ALARMS alarms were
# put on the bench deployment (evaluated every second on the daemon's loop,
# which the gateway does not share) and with /metrics and /v1/alarms read
# every second meanwhile.
#
# Environment: BENCH_WORKERS ("1 2"), BENCH_TPUT_ROUNDS (7),
# BENCH_TPUT_SECONDS (5), BENCH_ROUNDS (3), BENCH_SECONDS (10),
# BENCH_SWEEP (0), BENCH_ALARMS (5000), BENCH_LIFETIME (1800),
# BENCH_RESULTS (bench/results).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
MDSCALE=$build/src/mdscale
BACKEND=$build/bench/mdscale-bench-backend
ROUNDS=${BENCH_ROUNDS:-3}
TPUT_ROUNDS=${BENCH_TPUT_ROUNDS:-7}
TPUT_SECS=${BENCH_TPUT_SECONDS:-5}
SECS=${BENCH_SECONDS:-10}
SWEEP=${BENCH_SWEEP:-0}
ALARMS=${BENCH_ALARMS:-5000}
LIFE=${BENCH_LIFETIME:-1800}
WORKERS=${BENCH_WORKERS:-1 2}
RESULTS=${BENCH_RESULTS:-$top/bench/results}
CONNS=64
PATH_=/bench/predict

say() { printf 'gateway bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

for f in "$MDSCALE" "$BACKEND"; do
	[ -x "$f" ] || die "$f is missing; build first (ninja -C $build)"
done

# -- tools, from Debian when missing --
install_missing() {
	missing=""
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] ||
		missing="$missing nginx"
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] ||
		missing="$missing haproxy"
	command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
	command -v gnuplot >/dev/null 2>&1 || missing="$missing gnuplot-nox"
	[ -z "$missing" ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing:$missing (run as root, or install them)"
	say "installing$missing"
	# Installing nginx or haproxy must not start their system services
	# (on port 80, on every address): policy-rc.d says no, for the install.
	made_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	rc=0
	# shellcheck disable=SC2086
	{ apt-get update -q && apt-get install -y -q --no-install-recommends \
		$missing; } >&2 || rc=$?
	[ "$made_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
	[ "$rc" -eq 0 ] || die "apt-get install$missing failed"
}
install_missing
PATH=$PATH:/usr/sbin:/sbin
export PATH

tmp=$(mktemp -d /tmp/mdscale-bench.XXXXXX)
pids=""
cleanup() {
	for p in $pids; do
		kill "$p" 2>/dev/null || true
	done
	for p in $pids; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Prints n distinct free loopback ports.
free_ports() {
	python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# Waits until url answers 200 (10 s at most).
wait_http() {
	i=0
	while ! curl -sf -o /dev/null "$1"; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || die "$2 does not answer at $1"
		sleep 0.1
	done
}

# -- mdscale with W gateway threads (start_mdscale W API_PORT GW_PORT): one
# deployment of mdscale-bench-backend, 2 instances, a shape of 2 CPUs so
# that the cgroups do not throttle. Its instances are the backends of the
# nginx and HAProxy of the same W as well (B1, B2): every instance of every
# mdscale on the machine shares the CPU weight of the mdscale cgroup, so a
# backend outside it could get several times the CPU of one inside it on a
# busy machine, and the proxies would be compared through their backends --
start_mdscale() {
	dir=$tmp/mds$1
	mkdir -m 700 "$dir"
	# gatewayThreads only when more than one: an older build, which has
	# no such key, can be measured with BENCH_WORKERS=1.
	threads=""
	[ "$1" = 1 ] || threads=",
  \"gatewayThreads\": $1"
	printf '{\n  "shapes": [{"name": "bench.big", "cpus": 2, "memoryInMBs": 1024}],\n  "defaultShape": "bench.big"%s\n}\n' \
		"$threads" >"$dir.json"
	timeout "$LIFE" "$MDSCALE" serve --listen "127.0.0.1:$2" \
		--gateway "127.0.0.1:$3" --data "$dir" --config "$dir.json" \
		--log-level warn >"$dir.log" 2>&1 &
	pids="$pids $!"
	i=0
	until MDSCALE_URL="http://127.0.0.1:$2" MDSCALE_DATA="$dir" \
		"$MDSCALE" shape list >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || die "mdscale serve did not start: $(tail -3 "$dir.log")"
		sleep 0.1
	done
	MDSCALE_URL="http://127.0.0.1:$2" MDSCALE_DATA="$dir" \
		"$MDSCALE" deployment create --name bench --shape bench.big \
		--count 2 --health-path /health --wait --timeout 60 \
		--command "exec $BACKEND --port \$PORT --lifetime $LIFE" >/dev/null ||
		die "the bench deployment did not become ACTIVE: $(tail -3 "$dir.log")"
	wait_http "http://127.0.0.1:$3$PATH_" "mdscale's gateway"
	# Its two instances are the backends of nginx and HAProxy too.
	# shellcheck disable=SC2046
	set -- $(MDSCALE_URL="http://127.0.0.1:$2" MDSCALE_DATA="$dir" \
		"$MDSCALE" deployment list -o json | python3 -c '
import json, sys
d = json.load(sys.stdin)
items = d["items"] if isinstance(d, dict) else d
print(" ".join(str(i["port"]) for i in items[0]["instances"]
               if i["state"] == "READY"))')
	[ $# -eq 2 ] || die "the bench deployment has not 2 ready instances"
	B1=$1 B2=$2
}

# -- nginx (start_nginx W PORT): W workers, least_conn, upstream keep-alive
# 64, no access log --
start_nginx() {
	dir=$tmp/nginx$1
	mkdir -p "$dir"
	cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes $1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  upstream backends {
    least_conn;
    server 127.0.0.1:$B1;
    server 127.0.0.1:$B2;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$2;
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
	timeout "$LIFE" nginx -p "$dir" -c "$dir/nginx.conf" \
		-e "$dir/error.log" >"$dir/out.log" 2>&1 &
	pids="$pids $!"
	wait_http "http://127.0.0.1:$2$PATH_" nginx
}

# -- HAProxy (start_haproxy W PORT): nbthread W, leastconn, http-reuse
# always --
start_haproxy() {
	cat >"$tmp/haproxy$1.cfg" <<EOF
global
  nbthread $1
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$2
  default_backend be
backend be
  balance leastconn
  http-reuse always
  server s1 127.0.0.1:$B1
  server s2 127.0.0.1:$B2
EOF
	timeout "$LIFE" haproxy -db -f "$tmp/haproxy$1.cfg" >"$tmp/haproxy$1.log" 2>&1 &
	pids="$pids $!"
	wait_http "http://127.0.0.1:$2$PATH_" HAProxy
}

# Every peer of every W, idle until its turn: the port of peer P with W
# workers in PORT_PW, mdscale's API port in APIW.
for w in $WORKERS; do
	case $w in
	[1-9] | [1-9][0-9]) ;;
	*) die "BENCH_WORKERS: '$w' is not a worker count" ;;
	esac
	# shellcheck disable=SC2046
	set -- $(free_ports 4)
	eval "API$w=$1 PORT_mdscale$w=$2 PORT_nginx$w=$3 PORT_haproxy$w=$4"
	start_mdscale "$w" "$1" "$2"
	start_nginx "$w" "$3"
	start_haproxy "$w" "$4"
done
# The busy control plane rounds use the first W's daemon.
W1=${WORKERS%% *}
eval "API=\$API$W1"
MDS=$tmp/mds$W1
export MDSCALE_URL="http://127.0.0.1:$API" MDSCALE_DATA="$MDS"

# url_of PEER W
url_of() {
	eval "echo \"http://127.0.0.1:\$PORT_$1$2$PATH_\""
}

# Round r's order: the peers rotated by r, so none always goes first.
order() {
	case $(($1 % 3)) in
	0) echo "mdscale nginx haproxy" ;;
	1) echo "nginx haproxy mdscale" ;;
	2) echo "haproxy mdscale nginx" ;;
	esac
}

# Prints the median of the numbers on stdin.
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print 0; exit }
		if (NR % 2) print v[(NR + 1) / 2];
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

say "pinned nothing: $(nproc) cores shared by the proxy, 2 backends and the load generator"
say "workers: $WORKERS"
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
say "load average before: $LOADAVG (anything else running shows in every figure)"
mkdir -p "$tmp/raw"
for w in $WORKERS; do
	say "$w worker(s): max throughput, wrk -t$w -c$CONNS -d${TPUT_SECS}s, $TPUT_ROUNDS rounds"
	r=0
	while [ "$r" -lt "$TPUT_ROUNDS" ]; do
		for peer in $(order "$r"); do
			sleep 1
			wrk -t"$w" -c"$CONNS" -d"${TPUT_SECS}s" --latency "$(url_of "$peer" "$w")" \
				>"$tmp/raw/wrk-$peer-$w-$r.txt" 2>&1 ||
				die "wrk against $peer ($w) failed: $(tail -2 "$tmp/raw/wrk-$peer-$w-$r.txt")"
			rps=$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/raw/wrk-$peer-$w-$r.txt")
			say "  round $((r + 1)) $peer: $rps req/s"
		done
		r=$((r + 1))
	done

	lowest=""
	highest=""
	for peer in mdscale nginx haproxy; do
		m=$(cat "$tmp"/raw/wrk-"$peer"-"$w"-*.txt | awk '/^Requests\/sec:/ { print $2 }' | median)
		if [ -z "$lowest" ] || awk "BEGIN { exit !($m < $lowest) }"; then
			lowest=$m
		fi
		if [ -z "$highest" ] || awk "BEGIN { exit !($m > $highest) }"; then
			highest=$m
		fi
	done
	rate=$(awk "BEGIN { printf \"%d\", $lowest / 2 }")
	[ "$rate" -gt 0 ] || die "no throughput measured"
	eval "RATE$w=$rate HIGHEST$w=$highest"

	say "$w worker(s): latency, mdscale load --rate $rate (50% of the lowest maximum) for ${SECS}s, $ROUNDS rounds"
	r=0
	while [ "$r" -lt "$ROUNDS" ]; do
		for peer in $(order "$r"); do
			sleep 1
			"$MDSCALE" load --url "$(url_of "$peer" "$w")" --rate "$rate" \
				--duration "$SECS" --connections "$CONNS" --output json \
				>"$tmp/raw/load-$peer-$w-$r.json" 2>"$tmp/raw/load-$peer-$w-$r.err" ||
				die "mdscale load against $peer ($w) failed: $(cat "$tmp/raw/load-$peer-$w-$r.err")"
			say "  round $((r + 1)) $peer: $(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
print("p50 %.3f ms, p99 %.3f ms, %d ok, %d failed" % (j["latency_us"]["p50"] / 1e3,
      j["latency_us"]["p99"] / 1e3, j["succeeded"], j["failed_total"]))' "$tmp/raw/load-$peer-$w-$r.json")"
		done
		r=$((r + 1))
	done
done
eval "RATE=\$RATE$W1"

# -- the same latency measurement with mdscale's control plane busy:
# ALARMS alarms on the bench deployment, evaluated every second on the
# daemon's loop, and nginx measured in the same rounds as the reference --
if [ "$ALARMS" -gt 0 ]; then
	say "busy control plane: creating $ALARMS alarms on the bench deployment"
	python3 - "$API" "$MDS/token" "$ALARMS" <<'EOF2' || die "alarms were not created"
import http.client, json, sys
port, token_file, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
token = open(token_file).read().strip()
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
c.request("GET", "/v1/deployments", headers={"Authorization": "Bearer " + token})
dep = [d["id"] for d in json.loads(c.getresponse().read())["items"]
       if d["displayName"] == "bench"][0]
for i in range(n):
    body = json.dumps({
        "displayName": "busy-%05d" % i,
        "query": 'CpuUtilization[1m]{resourceId = "%s"}.max() > %d' % (dep, 1000 + i),
        "pendingDuration": "PT1M"})
    c.request("POST", "/v1/alarms", body, {
        "Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 201:
        sys.exit("alarm %d: HTTP %d" % (i, r.status))
EOF2
	sleep 3
	# Half the rate of step 2, so that one core can carry it while the
	# daemon's loop takes the other: what is left is the gateway's own
	# exposure to that loop.
	# shellcheck disable=SC2153 # RATE is set by eval above
	BUSY_RATE=$((RATE / 2))
	say "busy: mdscale load --rate $BUSY_RATE for ${SECS}s, $ROUNDS rounds, with $ALARMS alarms, /metrics and /v1/alarms read every second"
	r=0
	while [ "$r" -lt "$ROUNDS" ]; do
		for peer in mdscale nginx; do
			sleep 1
			# A Prometheus and a dashboard reading the daemon meanwhile.
			(
				i=0
				while [ "$i" -lt "$SECS" ]; do
					curl -s -o /dev/null -H "Authorization: Bearer $(cat "$MDS/token")" "http://127.0.0.1:$API/metrics"
					curl -s -o /dev/null -H "Authorization: Bearer $(cat "$MDS/token")" "http://127.0.0.1:$API/v1/alarms"
					sleep 1
					i=$((i + 1))
				done
			) &
			readers=$!
			"$MDSCALE" load --url "$(url_of "$peer" "$W1")" --rate "$BUSY_RATE" \
				--duration "$SECS" --connections "$CONNS" --output json \
				>"$tmp/raw/busy-$peer-$r.json" 2>"$tmp/raw/busy-$peer-$r.err" ||
				die "mdscale load against $peer failed: $(cat "$tmp/raw/busy-$peer-$r.err")"
			wait "$readers"
			say "  round $((r + 1)) $peer: $(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
print("p50 %.3f ms, p99 %.3f ms, max %.3f ms, %d ok, %d failed" % (
      j["latency_us"]["p50"] / 1e3, j["latency_us"]["p99"] / 1e3,
      j["latency_us"]["max"] / 1e3, j["succeeded"], j["failed_total"]))' "$tmp/raw/busy-$peer-$r.json")"
		done
		r=$((r + 1))
	done
	# How long the daemon's own loop was held up meanwhile.
	curl -sf -H "Authorization: Bearer $(cat "$MDS/token")" "http://127.0.0.1:$API/metrics" | grep "^mdscale_event_loop_lag" \
		>"$tmp/raw/busy-looplag.txt" || true
fi

if [ "$SWEEP" = 1 ]; then
	say "sweep: the highest mdscale load rate with p99 < 50 ms, 5 s steps"
	for w in $WORKERS; do
		eval "highest=\$HIGHEST$w"
		for peer in mdscale nginx haproxy; do
			ok_pct=0
			for pct in 40 50 60 70 80 90 100 110 120 130; do
				rate=$(awk "BEGIN { printf \"%d\", $highest * $pct / 100 }")
				sleep 1
				"$MDSCALE" load --url "$(url_of "$peer" "$w")" --rate "$rate" \
					--duration 5 --connections "$CONNS" --output json \
					>"$tmp/raw/sweep-$peer-$w-$pct.json" 2>/dev/null || break
				python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
bad = j["latency_us"]["p99"] >= 50000 or j["failed_total"] or j["dropped_overload"]
sys.exit(1 if bad else 0)' "$tmp/raw/sweep-$peer-$w-$pct.json" || break
				ok_pct=$pct
			done
			say "  $peer ($w): p99 < 50 ms up to $ok_pct% of $highest req/s"
		done
	done
fi

mkdir -p "$RESULTS"
python3 - "$tmp/raw" "$RESULTS" "$ROUNDS" "$SECS" "$CONNS" "$LOADAVG" "$ALARMS" "$TPUT_ROUNDS" "$TPUT_SECS" "$WORKERS" <<'EOF'
import glob, json, os, platform, re, statistics, subprocess, sys

(raw, results, rounds, secs, conns, loadavg, alarms, trounds, tsecs,
 workers) = sys.argv[1:11]
workers = [int(w) for w in workers.split()]
peers = ["mdscale", "nginx", "haproxy"]

def run(*cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"

cpu = "?"
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
machine = {
    "cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
    "memory_mb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20,
    "pinned": False, "load_average_before": loadavg,
    "note": "nothing pinned: the proxy, 2 backends and the load generator "
            "share the cores",
    "nginx": run("nginx", "-v"), "haproxy": run("haproxy", "-v"),
    "wrk": run("wrk", "-v"),
}

def wrk_rps(path):
    with open(path) as f:
        m = re.search(r"^Requests/sec:\s+([\d.]+)", f.read(), re.M)
    return float(m.group(1)) if m else 0.0

out = {"machine": machine, "method": {
    "rounds": int(rounds), "seconds": int(secs), "connections": int(conns),
    "workers": workers,
    "throughput": "wrk -tW -c%s -d%ss, W the workers, median of %s "
                  "interleaved rounds" % (conns, tsecs, trounds),
    "latency": "mdscale load open loop at 50%% of the lowest median "
               "maximum of the same W, median of %s interleaved rounds"
               % rounds}, "workers": {}}

def peer_entry(p, w):
    rps = [wrk_rps(x) for x in sorted(glob.glob("%s/wrk-%s-%d-*.txt" % (raw, p, w)))]
    loads = [json.load(open(x)) for x in sorted(glob.glob("%s/load-%s-%d-*.json" % (raw, p, w)))]
    e = {
        "rps_rounds": rps, "rps": statistics.median(rps) if rps else 0.0,
        "p50_ms_rounds": [l["latency_us"]["p50"] / 1e3 for l in loads],
        "p99_ms_rounds": [l["latency_us"]["p99"] / 1e3 for l in loads],
        "load_failed_rounds": [l["failed_total"] + l["dropped_overload"] for l in loads],
        "load_runs": [{k: l[k] for k in ("sent", "succeeded", "failed",
                                           "dropped_overload", "latency_us",
                                           "rate_achieved",
                                           "generator_lag_max_ms")}
                      for l in loads],
    }
    e["p50_ms"] = statistics.median(e["p50_ms_rounds"]) if loads else 0.0
    e["p99_ms"] = statistics.median(e["p99_ms_rounds"]) if loads else 0.0
    if loads:
        e["load_rate"] = int(loads[0]["rate_target"])
    sweep = {}
    for x in glob.glob("%s/sweep-%s-%d-*.json" % (raw, p, w)):
        l = json.load(open(x))
        sweep[int(l["rate_target"])] = {"p99_ms": l["latency_us"]["p99"] / 1e3,
                                         "failed": l["failed_total"] + l["dropped_overload"]}
    if sweep:
        # The steps ran in increasing order and stopped at the first miss.
        best = 0
        for r in sorted(sweep):
            if sweep[r]["p99_ms"] >= 50 or sweep[r]["failed"]:
                break
            best = r
        e["sweep"] = {str(r): sweep[r] for r in sorted(sweep)}
        e["max_sustainable_p99_50ms"] = best
    return e

print()
print("machine: %d x %s, Linux %s, %d MB; %s; load average before: %s"
      % (machine["cpus"], cpu, machine["kernel"], machine["memory_mb"],
         machine["note"], loadavg))
print("throughput: wrk -tW -c%s -d%ss, median of %s interleaved rounds; "
      "latency: mdscale load open loop for %ss at 50%% of the lowest "
      "maximum, median of %s interleaved rounds"
      % (conns, tsecs, trounds, secs, rounds))
for w in workers:
    group = {p: peer_entry(p, w) for p in peers}
    ngx, hap = group["nginx"], group["haproxy"]
    for p in peers:
        e = group[p]
        e["rps_vs_nginx"] = round(e["rps"] / (ngx["rps"] or 1), 3)
        e["rps_vs_haproxy"] = round(e["rps"] / (hap["rps"] or 1), 3)
        e["p99_vs_nginx"] = round(e["p99_ms"] / (ngx["p99_ms"] or 1), 3)
        e["p99_vs_haproxy"] = round(e["p99_ms"] / (hap["p99_ms"] or 1), 3)
    out["workers"][str(w)] = group
    print()
    print("%d worker(s), latency at %s req/s:" % (
        w, group["mdscale"].get("load_rate", "?")))
    hdr = "%-9s %10s %7s %7s %8s %8s %8s %8s" % (
        "PEER", "REQ/S", "/NGINX", "/HAPRX", "P50_MS", "P99_MS", "/NGINX",
        "/HAPRX")
    if any("sweep" in e for e in group.values()):
        hdr += " %13s" % "MAX_P99<50MS"
    print(hdr)
    for p in peers:
        e = group[p]
        line = "%-9s %10.0f %6.2fx %6.2fx %8.3f %8.3f %7.2fx %7.2fx" % (
            p, e["rps"], e["rps_vs_nginx"], e["rps_vs_haproxy"],
            e["p50_ms"], e["p99_ms"], e["p99_vs_nginx"], e["p99_vs_haproxy"])
        if "sweep" in e:
            line += " %13d" % e["max_sustainable_p99_50ms"]
        print(line)

busy = {}
for p in ("mdscale", "nginx"):
    loads = [json.load(open(x)) for x in sorted(glob.glob("%s/busy-%s-*.json" % (raw, p)))]
    if loads:
        busy[p] = {
            "p50_ms_rounds": [l["latency_us"]["p50"] / 1e3 for l in loads],
            "p99_ms_rounds": [l["latency_us"]["p99"] / 1e3 for l in loads],
            "max_ms_rounds": [l["latency_us"]["max"] / 1e3 for l in loads],
            "failed_rounds": [l["failed_total"] + l["dropped_overload"] for l in loads],
        }
        busy[p]["max_ms"] = statistics.median(busy[p]["max_ms_rounds"])
        busy[p]["p50_ms"] = statistics.median(busy[p]["p50_ms_rounds"])
        busy[p]["p99_ms"] = statistics.median(busy[p]["p99_ms_rounds"])
        busy[p]["load_rate"] = int(loads[0]["rate_target"])
if busy:
    out["busy"] = {"alarms": int(alarms), "workers": workers[0],
                   "load_rate": busy["mdscale"]["load_rate"], "peers": busy}
    lag = os.path.join(raw, "busy-looplag.txt")
    if os.path.exists(lag):
        for line in open(lag):
            if line.startswith("mdscale_event_loop_lag_max_seconds "):
                out["busy"]["daemon_loop_lag_max_ms"] = float(line.split()[1]) * 1e3
    print()
    print("with mdscale's control plane busy (%s alarms evaluated each second, "
          "/metrics and /v1/alarms read every second), %d worker(s), at %d "
          "req/s, median of %s rounds:" % (alarms, workers[0],
                                           out["busy"]["load_rate"], rounds))
    print("%-9s %10s %9s %9s %9s" % ("PEER", "", "P50_MS", "P99_MS", "MAX_MS"))
    for p in busy:
        print("%-9s %10s %9.3f %9.3f %9.3f" % (p, "", busy[p]["p50_ms"],
                                              busy[p]["p99_ms"], busy[p]["max_ms"]))
    if "daemon_loop_lag_max_ms" in out["busy"]:
        print("largest lag of the daemon's own loop meanwhile: %.1f ms"
              % out["busy"]["daemon_loop_lag_max_ms"])

with open(os.path.join(results, "gateway.json"), "w") as f:
    json.dump(out, f, indent=2)
    f.write("\n")
print("\nraw figures: %s" % os.path.join(results, "gateway.json"))

try:
    data = os.path.join(raw, "plot.dat")
    with open(data, "w") as f:
        for w in workers:
            for p in peers:
                f.write("%s/%d %f\n" % (p, w, out["workers"][str(w)][p]["rps"]))
    svg = os.path.join(results, "gateway.svg")
    script = ('set terminal svg size 640,320; set output "%s"; '
              'set title "max throughput, wrk -tW -c%s, W workers (median of %s)"; '
              'set ylabel "req/s"; set style fill solid; set boxwidth 0.6; '
              'set yrange [0:*]; unset key; '
              'plot "%s" using 0:2:xtic(1) with boxes' % (svg, conns, trounds, data))
    subprocess.run(["gnuplot", "-e", script], check=True, capture_output=True,
                   timeout=30)
    print("plot: %s" % svg)
except (OSError, subprocess.SubprocessError):
    pass
EOF
