#!/usr/bin/env python3
"""What the daemon's longest loop turns were doing, under bench/volume.py's
hostile volume (or any part of it).

Runs one run of volume.py's scenario (--series N, --quiet S) under
`perf record -a`: the CPU clock sampled on every CPU (-F HZ, with call
chains) and a uprobe on the daemon's loop-turn mark (looplag.c's prepare
handle, run once a turn just before the loop polls). Then prints:

- per daemon of the run, its turns (counted between two marks) by the CPU
  samples they hold: the --top longest, each with the callbacks its
  samples were in (the frame under libuv's) and its hottest stacks;
- the gaps in every CPU's samples over --gap ms. perf samples every CPU
  whether it runs a task or idles, so a gap means the virtual CPU itself
  did not run: the host took it away. If the daemon's thread was on it, a
  turn that spans the gap counts that time as CPU (the guest cannot tell),
  and its mdscale_event_loop_turn_cpu_seconds says so, not its samples.

Sampling costs time of its own on a virtual machine (each sample exits to
the host): turns run longer under it, so the sample counts name the work,
and bench/volume.py (without perf) measures it. Run as root, on a build
with its symbols and frame pointers, which perf needs for the call chains
(the default build has symbols but no frame pointers):
  meson setup /tmp/fp --buildtype=debugoptimized \
      -Dc_args=-fno-omit-frame-pointer && ninja -C /tmp/fp
  python3 bench/loopturns.py /tmp/fp

Usage: bench/loopturns.py BUILD [--series N] [--quiet S] [--hz HZ]
       [--top K] [--gap MS]"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import volume  # noqa: E402

PROBE = "probe_mdscale:looplag_turn"
HEAD = re.compile(r"\s*(\S.*?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):")


def perf(*args, **kw):
    return subprocess.run(["perf"] + list(args), check=True, **kw)


def add_probe(binary):
    subprocess.run(["perf", "probe", "-q", "-d", PROBE],
                   stderr=subprocess.DEVNULL)
    perf("probe", "-q", "-x", binary, "--add",
         "looplag_turn=on_prepare@src/daemon/looplag.c")


def events(text):
    """Yields (comm, pid, tid, cpu, time, event, frames) of perf script's
    output."""
    cur = None
    for line in text.splitlines():
        if not line.strip():
            if cur:
                yield cur
            cur = None
            continue
        if not line[0].isspace() or cur is None:
            m = HEAD.match(line)
            if m:
                cur = (m.group(1), int(m.group(2)), int(m.group(3)),
                       int(m.group(4)), float(m.group(5)), m.group(6), [])
                continue
        if cur is not None:
            parts = line.split(None, 1)
            if len(parts) > 1 and parts[1].strip() != "[unknown]":
                cur[6].append(parts[1].strip())
    if cur:
        yield cur


def callback(frames):
    """The frame under libuv's (uv__... or uv_run): the callback that ran."""
    for i, f in enumerate(frames):
        if f.startswith("uv__") or f.startswith("uv_run"):
            return frames[i - 1] if i > 0 else f
    return frames[-1] if frames else "?"


def report(evs, hz, top, gap_ms):
    daemons = collections.defaultdict(list)   # pid -> [(t, samples)]
    open_turn = {}
    last_on_cpu = {}
    gaps = []
    for comm, pid, tid, cpu, t, ev, frames in evs:
        if ev.startswith("cpu-clock"):
            if cpu in last_on_cpu:
                t0, who = last_on_cpu[cpu]
                if t - t0 > gap_ms / 1000:
                    gaps.append((t - t0, cpu, t0, who, "%s/%d" % (comm, tid)))
            last_on_cpu[cpu] = (t, "%s/%d" % (comm, tid))
        if pid != tid or comm != "mdscale":
            continue
        if ev.startswith(PROBE):
            if pid in open_turn:
                daemons[pid].append(open_turn[pid])
            open_turn[pid] = (t, [])
        elif ev.startswith("cpu-clock") and pid in open_turn:
            open_turn[pid][1].append(frames)
    ms = 1000.0 / hz
    for pid, turns in daemons.items():
        t_first = turns[0][0]
        print("daemon %d: %d turns" % (pid, len(turns)))
        for t, samples in sorted(turns, key=lambda x: -len(x[1]))[:top]:
            print("  +%.2f s: %d samples (about %.1f ms on the CPU)"
                  % (t - t_first, len(samples), len(samples) * ms))
            cbs = collections.Counter(callback(f) for f in samples)
            print("    callbacks: " + ", ".join(
                "%s %d" % kv for kv in cbs.most_common(4)))
            stacks = collections.Counter(" < ".join(f[:5]) for f in samples)
            for s, n in stacks.most_common(2):
                print("    %3d %s" % (n, s[:200]))
    print("gaps over %g ms in a CPU's samples (the host took the CPU):"
          % gap_ms)
    for g, cpu, t0, before, after in sorted(gaps, reverse=True)[:top]:
        print("  %.1f ms on CPU %d, between %s and %s" % (g * 1000, cpu,
                                                         before, after))
    if not gaps:
        print("  none")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--series", type=int, default=100000)
    ap.add_argument("--quiet", type=float, default=40)
    ap.add_argument("--hz", type=int, default=1000)
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--gap", type=float, default=50)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    add_probe(os.path.join(build, "src", "mdscale"))
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        rec = subprocess.Popen(
            ["perf", "record", "-q", "-a", "-g", "-F", str(args.hz),
             "-e", "cpu-clock", "-e", PROBE, "-o", data],
            stderr=subprocess.DEVNULL)
        try:
            res = volume.one_run(build, args.series, args.quiet)
        finally:
            rec.send_signal(2)
            rec.wait()
            subprocess.run(["perf", "probe", "-q", "-d", PROBE],
                           stderr=subprocess.DEVNULL)
        print("volume (under perf): " + ", ".join(
            "%s %s" % (k, round(v, 2)) for k, v in res.items()
            if "turn" in k))
        out = perf("script", "-i", data, "-F",
                   "comm,pid,tid,cpu,time,event,ip,sym",
                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                   text=True).stdout
    report(events(out), args.hz, args.top, args.gap)


if __name__ == "__main__":
    main()
