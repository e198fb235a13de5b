#!/usr/bin/env python3
"""Where the CPU of a cgroup's processes goes, by command, and what they wait on.

    cgroup-profile.py CGROUP_DIR OUT_FILE

Samples the processes of a cpuacct cgroup (v1: CGROUP_DIR/tasks, threads
included) every 20 ms until SIGTERM, then writes to OUT_FILE, per command
name: the CPU seconds (the last run time seen of each thread, from
/proc/TID/schedstat, in nanoseconds: clock ticks would round the many
short-lived commands down to nothing),
the number of threads, and how many samples found them running (R), in
uninterruptible sleep (D: disk IO, mostly) or sleeping (S). A thread that
lives and dies between two samples is missed; the cgroup's cpuacct.usage
is the exact total.
"""
import os
import signal
import sys
import time

cg, out = sys.argv[1], sys.argv[2]
last = {}  # (tid, comm) -> ns on the CPU
states = {}  # comm -> {state: samples}
stop = False


def on_term(signum, frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)

while not stop:
    try:
        with open(os.path.join(cg, "tasks")) as f:
            tids = f.read().split()
    except OSError:
        break
    for tid in tids:
        try:
            with open(f"/proc/{tid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{tid}/schedstat") as f:
                ticks = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state = stat[stat.rindex(")") + 2 :].split()[0]
        # A thread's comm can change once (exec): keep the latest.
        last[(tid, comm)] = ticks
        s = states.setdefault(comm, {})
        s[state] = s.get(state, 0) + 1
    time.sleep(0.02)

by_comm = {}
for (tid, comm), ticks in last.items():
    c = by_comm.setdefault(comm, [0, 0])
    c[0] += ticks
    c[1] += 1
total = sum(c[0] for c in by_comm.values()) or 1
with open(out, "w") as f:
    f.write(f"{'command':<18} {'CPU s':>7} {'share':>6} {'threads':>8} {'R':>6} {'D':>6} {'S':>7}\n")
    for comm, (ticks, n) in sorted(by_comm.items(), key=lambda kv: -kv[1][0]):
        s = states.get(comm, {})
        f.write(
            f"{comm:<18} {ticks / 1e9:7.2f} {100 * ticks / total:5.1f}% {n:8d} "
            f"{s.get('R', 0):6d} {s.get('D', 0):6d} {s.get('S', 0):7d}\n"
        )
