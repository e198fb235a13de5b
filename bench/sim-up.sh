#!/bin/sh
# Measures the simulated fleet: how long `nixbook-sim up N` takes until
# every host answers SSH, how long `down` takes, and the memory of a host
# (the RSS of every process in its PID namespace: its init, sshd and
# anything running in it) and of the fleet daemon. Needs root.
#
#   bench/sim-up.sh            # up 10 and up 50
#   bench/sim-up.sh 5 20 100   # other fleet sizes
set -eu

cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "sim-up.sh: needs root" >&2; exit 1; }
sizes=${*:-10 50}
work=$(mktemp -d /tmp/nixbook-sim-bench.XXXXXX)
trap 'for d in "$work"/fleet-*; do [ -d "$d" ] && "$work/nixbook-sim" down --dir "$d" >/dev/null 2>&1; done; rm -rf "$work"' EXIT INT TERM

go build -o "$work/nixbook-sim" ./cmd/nixbook-sim
sim=$work/nixbook-sim

now() { date +%s.%N; }
elapsed() { echo "$1 $2" | awk '{ printf "%.2f", $2 - $1 }'; }

# rss_kib PID: VmRSS of a process in KiB (0 when gone).
rss_kib() { awk '/^VmRSS:/ { print $2; f = 1 } END { if (!f) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# pss_kib PID: its proportional share (shared pages divided among sharers).
pss_kib() { awk '/^Pss:/ { print $2; f = 1 } END { if (!f) print 0 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }

# Warm the payload cache so that every size measures the same thing.
"$sim" up 1 --dir "$work/fleet-warm" >/dev/null
"$sim" down --dir "$work/fleet-warm" >/dev/null

printf '%-6s %8s %8s %12s %12s %11s %11s %11s\n' hosts "up (s)" "down (s)" "RSS/host" "PSS/host" "procs/host" "daemon RSS" "total PSS"
for n in $sizes; do
    dir=$work/fleet-$n
    t0=$(now)
    "$sim" up "$n" --dir "$dir" >"$work/up-$n.log" 2>&1 || { cat "$work/up-$n.log" >&2; exit 1; }
    t1=$(now)
    "$sim" status --json --dir "$dir" >"$work/status-$n.json"
    # The first "pid" is the daemon's, then one per host init.
    pids=$(sed -n 's/^ *"pid": *\([0-9][0-9]*\).*/\1/p' "$work/status-$n.json")
    daemon=$(echo "$pids" | head -n 1)
    inits=$(echo "$pids" | tail -n +2)
    # Every process with its PID namespace and RSS, once.
    for p in /proc/[0-9]*; do
        ns=$(readlink "$p/ns/pid" 2>/dev/null) || continue
        echo "$ns $(rss_kib "${p#/proc/}") $(pss_kib "${p#/proc/}")"
    done >"$work/procs-$n"
    for pid in $inits; do readlink "/proc/$pid/ns/pid"; done >"$work/hostns-$n"
    line=$(awk -v hosts="$n" '
        NR == FNR { host[$1] = 1; next }
        ($1 in host) { rss += $2; pss += $3; procs++ }
        END { printf "%.1f %.1f %.1f", rss / hosts / 1024, pss / hosts / 1024, procs / hosts }
    ' "$work/hostns-$n" "$work/procs-$n")
    daemon_mib=$(rss_kib "$daemon" | awk '{ printf "%.1f", $1 / 1024 }')
    t2=$(now)
    "$sim" down --dir "$dir" >/dev/null
    t3=$(now)
    set -- $line
    total=$(echo "$2 $n $(pss_kib "$daemon")" | awk '{ printf "%.1f", $1 * $2 + $3 / 1024 }')
    printf '%-6s %8s %8s %8s MiB %8s MiB %11s %7s MiB %7s MiB\n' "$n" "$(elapsed "$t0" "$t1")" "$(elapsed "$t2" "$t3")" "$1" "$2" "$3" "$daemon_mib" "$total"
done
echo
echo "up: until every host answers SSH (payload cached). RSS/PSS: every process in the host's PID namespace"
echo "(its init and sshd); PSS divides the pages hosts share (the binaries) among them: the memory a host adds."
echo "Not counted: the hosts' tmpfs (their RAM disks, near empty at boot) and the page cache of their disk images."
