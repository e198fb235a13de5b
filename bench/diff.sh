#!/usr/bin/env bash
# Measures `nixbook run --check --diff` of a one-line change in a 16k-line file (and in a file
# just under the 256 KiB --diff limit) on one loopback sshd host: wall time and peak memory.
# Usage: bench/diff.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
FLEET_DIR=$(mktemp -d /tmp/nixbook-bench-diff.XXXXXX)
trap '"$here/fleet-down.sh" "$FLEET_DIR"; rm -rf "$FLEET_DIR"' EXIT
"$here/fleet-up.sh" 1 "$FLEET_DIR" >/dev/null
echo "h1 $(cut -d' ' -f1,2 "$FLEET_DIR/host_ed25519.pub")" > "$FLEET_DIR/nixbook_known_hosts"
cat > "$FLEET_DIR/copy.yml" <<YML
- hosts: all
  gather_facts: false
  tasks:
    - name: replace
      copy: {src: "$FLEET_DIR/new.conf", dest: "$FLEET_DIR/old.conf"}
YML
printf '| lines | file | wall time | peak RSS |\n|---|---|---|---|\n'
for lines in 16000 23000; do
  seq -f "line %g" 1 "$lines" > "$FLEET_DIR/old.conf"
  sed "s/^line $((lines / 2))\$/a changed line/" "$FLEET_DIR/old.conf" > "$FLEET_DIR/new.conf"
  /usr/bin/time -f '%e %M' -o "$FLEET_DIR/time" "$top/bin/nixbook" run "$FLEET_DIR/copy.yml" \
    -i "$FLEET_DIR/fleet.yml" --known-hosts "$FLEET_DIR/nixbook_known_hosts" --log-dir "$FLEET_DIR/logs" \
    --check --diff --no-color > "$FLEET_DIR/out" 2> "$FLEET_DIR/err"
  grep -q '+a changed line' "$FLEET_DIR/out" || { echo "no diff shown" >&2; cat "$FLEET_DIR/out" >&2; exit 1; }
  read -r secs kib < "$FLEET_DIR/time"
  printf '| %d | %d KiB | %s s | %d MiB |\n' "$lines" "$(( $(stat -c %s "$FLEET_DIR/old.conf") / 1024 ))" "$secs" "$((kib / 1024))"
done
