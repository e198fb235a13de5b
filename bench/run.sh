#!/usr/bin/env bash
# Runs M `command: echo` tasks on N loopback sshd hosts with nixbook, Ansible, the OpenSSH
# client (one multiplexed master per host) and the bare x/crypto/ssh floor, and prints a table.
# Usage: bench/run.sh [N] [M]     (defaults 50 hosts, 10 tasks; SKIP_ANSIBLE=1 skips Ansible)
set -euo pipefail
N=${1:-50}; M=${2:-10}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
FLEET_DIR=$(mktemp -d /tmp/nixbook-bench.XXXXXX)
trap '"$here/fleet-down.sh" "$FLEET_DIR"; rm -rf "$FLEET_DIR"' EXIT
"$here/fleet-up.sh" "$N" "$FLEET_DIR" >/dev/null

# nixbook's known_hosts is keyed by inventory name; record the fleet's key for each host.
for i in $(seq 1 "$N"); do echo "h$i $(cut -d' ' -f1,2 "$FLEET_DIR/host_ed25519.pub")"; done > "$FLEET_DIR/nixbook_known_hosts"
{ echo "- hosts: all"; echo "  gather_facts: false"; echo "  tasks:"
  for i in $(seq 1 "$M"); do printf '    - name: step %d\n      command: echo step %d\n' "$i" "$i"; done; } > "$FLEET_DIR/nixbook-$M.yml"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }

runs=${RUNS:-5}
nb=(); fl=(); rs=()
for _ in $(seq 1 "$runs"); do
  s=$(now)
  "$top/bin/nixbook" run "$FLEET_DIR/nixbook-$M.yml" -i "$FLEET_DIR/fleet.yml" \
    --known-hosts "$FLEET_DIR/nixbook_known_hosts" --log-dir "$FLEET_DIR/logs" --no-color > "$FLEET_DIR/nixbook.log"
  nb+=("$(echo "$(now) - $s" | bc)")
  fl+=("$(cd "$here/floor" && go run . "$FLEET_DIR" | awk '{print $2}')")
  rs+=("$("$here/raw-ssh-tasks.sh" "$M" "$FLEET_DIR" | awk '{print $2}')")
done
changed=$(grep -c '^changed: ' "$FLEET_DIR/nixbook.log" || true)
[ "$changed" -eq $((N * M)) ] || { echo "nixbook ran $changed of $((N * M)) tasks:"; tail -20 "$FLEET_DIR/nixbook.log"; exit 1; }

nixbook=$(printf '%s\n' "${nb[@]}" | median)
floor=$(printf '%s\n' "${fl[@]}" | median)
rawssh=$(printf '%s\n' "${rs[@]}" | median)
if [ -z "${SKIP_ANSIBLE:-}" ]; then
  ansible=$("$here/ansible-tasks.sh" "$M" "$FLEET_DIR" | awk '{print $2}')
else
  ansible=""
fi

printf '\n%d hosts x %d `command: echo` tasks, loopback sshd, median of %d runs (Ansible: 1 run)\n\n' "$N" "$M" "$runs"
printf '| tool | wall time | vs floor |\n|---|---|---|\n'
row() { printf '| %s | %.2f s | %.2fx |\n' "$1" "$2" "$(echo "$2 / $floor" | bc -l)"; }
row "nixbook (forks = all hosts, one connection per host)" "$nixbook"
row "bare x/crypto/ssh floor (bench/floor)" "$floor"
row "OpenSSH client, one multiplexed master per host" "$rawssh"
[ -n "$ansible" ] && row "Ansible (forks=$N, pipelining, ControlPersist)" "$ansible"
[ -n "$ansible" ] && printf '\nnixbook is %.1fx faster than Ansible.\n' "$(echo "$ansible / $nixbook" | bc -l)"
exit 0
