#!/usr/bin/env bash
# Rehearses a fleet's reinstall at scale: brings up N fresh simulated servers
# with the simulator's defaults, runs the stock install.yml on all of them
# (fs_layout=ext4, as make demo: the machine's kernel has no ZFS), and reports
#   - the wall time of `nixbook run` and of `nixbook-sim up`,
#   - the CPU seconds of the controller (nixbook) and of the simulator (its
#     daemon and everything running in its hosts: init, sshd, mkfs, nix, ...),
#   - the simulator's memory: PSS summed over all its processes, sampled
#     every second during the run; the peak, per host,
# then brings the fleet down and checks that nothing is left behind.
# Needs root and the cgroup v1 cpuacct controller. The machine's load is printed before and after: a wall time
# measured while other work ran is not the simulator's.
#
#   bench/sim-scale.sh 20            # one size
#   bench/sim-scale.sh 1 5 20 50     # several, one after the other
#   KEEP=1 bench/sim-scale.sh 5      # keep the work directory (logs, samples)
#   PROFILE=1 bench/sim-scale.sh 20  # also the simulator's CPU by command (bench/cgroup-profile.py)
#   API_RATE='1000/s burst 1000' bench/sim-scale.sh 20
#       lifts the OVH API budget on both sides (the emulator's limit per
#       consumer key and nixbook's ovh_rate_limit), the rest of the API's bad
#       day kept: with one key at OVH's 60 calls a minute the API, not the
#       simulator, sets the time of a big fleet (see bench/sim-scale.md).
set -euo pipefail

cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "sim-scale.sh: needs root" >&2; exit 1; }
[ $# -gt 0 ] || { echo "usage: sim-scale.sh N [N...]" >&2; exit 2; }
work=$(mktemp -d /tmp/nixbook-sim-scale.XXXXXX)
cleanup() {
    for d in "$work"/fleet-*; do [ -d "$d" ] && "$work/nixbook-sim" down --dir "$d" >/dev/null 2>&1 || true; done
    [ -d "${cg:-}" ] && rmdir "$cg/sim" "$cg/ctl" "$cg" 2>/dev/null || true
    [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT INT TERM

go build -o "$work/nixbook" ./cmd/nixbook
go build -o "$work/nixbook-sim" ./cmd/nixbook-sim
sim=$work/nixbook-sim
up_args=() run_args=()
if [ -n "${API_RATE:-}" ]; then
    printf 'api:\n  rate: "%s"\n' "$API_RATE" >"$work/api.yml"
    up_args=(--hosts "$work/api.yml")
    printf 'all:\n  vars:\n    ovh_rate_limit: "%s"\n' "$API_RATE" >"$work/rate.yml"
    run_args=(-i "$work/rate.yml")
fi

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# pss_kib PID...: PSS of the processes, summed (one awk for all: the
# sampler must not cost the machine much).
pss_kib() {
    local files=()
    for p in "$@"; do files+=("/proc/$p/smaps_rollup"); done
    cat "${files[@]}" 2>/dev/null | awk '/^Pss:/ { s += $2 } END { print s + 0 }'
}
# CPU is counted by two cpuacct cgroups (v1): every process the simulator
# starts (its daemon, the hosts' inits, sshd, mkfs, nix, ...) inherits the
# one `up` runs in, and nixbook with its ssh clients runs in the other.
cg=/sys/fs/cgroup/cpuacct/$(basename "$work")
mkdir "$cg" "$cg/sim" "$cg/ctl"
cpu_ns() { cat "$1/cpuacct.usage"; }
# all_cpu: seconds of CPU the whole machine spent busy (kernel threads
# included: loop devices, writeback, jbd2), which cgroups do not count.
all_cpu() { awk -v t="$(getconf CLK_TCK)" '/^cpu / { print ($2 + $3 + $4 + $7 + $8) / t }' /proc/stat; }
# Warm the payload cache (built once per machine) so every size measures the same thing.
"$sim" up 1 --dir "$work/fleet-warm" >/dev/null
"$sim" down --dir "$work/fleet-warm" >/dev/null
rm -rf "$work/fleet-warm"

[ -z "${API_RATE:-}" ] || echo "OVH API budget lifted to $API_RATE"
printf '%-5s %7s %8s %9s %9s %9s %10s %8s %10s %11s %11s %s\n' hosts "up (s)" "run (s)" "run/host" "ctl CPU" "sim CPU" "sim CPU/h" "all CPU" "PSS peak" "PSS/host" "disk/host" "load before→after"
for n in "$@"; do
    dir=$work/fleet-$n
    load0=$(load)
    t0=$(now)
    (echo "$BASHPID" >"$cg/sim/cgroup.procs"; exec "$sim" up "$n" --dir "$dir" "${up_args[@]}") >"$work/up-$n.log" 2>&1 || { cat "$work/up-$n.log" >&2; exit 1; }
    t1=$(now)
    daemon=$(sed -n 's/^ *"pid": *\([0-9][0-9]*\).*/\1/p' <("$sim" status --json --dir "$dir") | head -n 1)
    sim_cpu0=$(cpu_ns "$cg/sim")
    all_cpu0=$(all_cpu)
    ctl_cpu0=$(cpu_ns "$cg/ctl")

    # Sample the simulator's memory every second while nixbook runs.
    (
        while kill -0 "$daemon" 2>/dev/null; do
            pss_kib $(cat "$cg/sim/cgroup.procs")
            sleep 1
        done
    ) >"$work/pss-$n" &
    sampler=$!
    profiler=
    if [ -n "${PROFILE:-}" ]; then
        python3 bench/cgroup-profile.py "$cg/sim" "$work/profile-$n" &
        profiler=$!
    fi

    t2=$(now)
    (echo "$BASHPID" >"$cg/ctl/cgroup.procs"; exec "$work/nixbook" run install.yml -i "$dir/fleet.yml" \
        --known-hosts "$dir/known_hosts" --log-dir "$work/logs-$n" -e fs_layout=ext4 "${run_args[@]}") \
        >"$work/run-$n.log" 2>&1 || { tail -n 30 "$work/run-$n.log" >&2; exit 1; }
    t3=$(now)
    grep -q 'failed=0' "$work/run-$n.log" || { tail -n 30 "$work/run-$n.log" >&2; exit 1; }
    sim_cpu=$(awk -v a="$sim_cpu0" -v b="$(cpu_ns "$cg/sim")" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    ctl_cpu=$(awk -v a="$ctl_cpu0" -v b="$(cpu_ns "$cg/ctl")" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    all_cpu=$(awk -v a="$all_cpu0" -v b="$(all_cpu)" 'BEGIN { printf "%.1f", (b - a) }')
    kill "$sampler" $profiler 2>/dev/null || true
    wait "$sampler" $profiler 2>/dev/null || true
    peak=$(sort -n "$work/pss-$n" | tail -n 1)
    # What the disks hold after the install (their images are sparse).
    disk_mib=$(du -s -k "$dir/disks" | awk -v n="$n" '{ printf "%.0f", $1 / 1024 / n }')

    # What the fleet recorded creating (namespaces, links), to check it is gone after down.
    made=$(grep -o '"nbs[^"/]*"' "$dir/state.json" | tr -d '"' | sort -u)
    "$sim" down --dir "$dir" >/dev/null
    load1=$(load)
    run=$(elapsed "$t2" "$t3")
    printf '%-5s %7s %8s %9s %9s %9s %10s %8s %6s MiB %7s MiB %7s MiB %s → %s\n' "$n" "$(elapsed "$t0" "$t1")" "$run" \
        "$(awk -v r="$run" -v n="$n" 'BEGIN { printf "%.2f", r / n }')" "$ctl_cpu" "$sim_cpu" \
        "$(awk -v c="$sim_cpu" -v n="$n" 'BEGIN { printf "%.2f", c / n }')" "$all_cpu" \
        "$(awk -v k="$peak" 'BEGIN { printf "%.0f", k / 1024 }')" \
        "$(awk -v k="$peak" -v n="$n" 'BEGIN { printf "%.1f", k / 1024 / n }')" "$disk_mib" "$load0" "$load1"

    [ -z "$profiler" ] || { echo "the simulator's CPU during the run of $n hosts, by command:"; cat "$work/profile-$n"; echo; }
    # Nothing may be left: the fleet's namespaces, loop devices, mounts, processes.
    left=$( {
        for x in $made; do { [ -e "/run/netns/$x" ] || [ -e "/sys/class/net/$x" ]; } && echo "$x"; done
        losetup -a | grep -F "$dir" || true
        grep -F "$dir" /proc/mounts || true
        [ -z "$(cat "$cg/sim/cgroup.procs")" ] || { echo "processes:"; cat "$cg/sim/cgroup.procs"; }
    } )
    [ -z "$left" ] || { echo "left behind by fleet-$n:" >&2; echo "$left" >&2; exit 1; }
done
echo
echo "run: nixbook run install.yml -e fs_layout=ext4 on N fresh hosts (rescue -> kexec -> partition -> install -> disk boot)."
echo "ctl CPU: nixbook and its ssh clients. sim CPU: the daemon and every process of its hosts during the run."
echo "all CPU: the whole machine's busy CPU during the run (kernel threads too, and whatever else ran)."
echo "PSS peak: the simulator's processes (daemon, inits, sshd, and what runs in the hosts), sampled each second."
echo "disk/host: the blocks the host's disk images hold after the install (sparse files)."
echo "Not counted: the hosts' tmpfs and the page cache of their disk images."
