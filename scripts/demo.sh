#!/usr/bin/env bash
# make demo: bring up three simulated Kimsufi servers, reinstall them with NixOS
# through the kexec installer (install.yml), show one answering as NixOS with
# the host key nixbook recorded, and tear the fleet down.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=$(mktemp -d /tmp/nixbook-demo.XXXXXX)
cleanup() { bin/nixbook-sim down --dir "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "nixbook-sim up 3: two simulated servers in the OVH rescue system, ks3 rented with Debian"
# ks3 starts as most rented servers do: OVH's Debian on its disk, answering SSH.
printf 'hosts:\n  ks3: {mode: disk, data: old-os}\n' >"$DIR/overrides.yml"
bin/nixbook-sim up 3 --dir "$DIR" --hosts "$DIR/overrides.yml"

step "nixbook run install.yml --check: what would happen, per server (no disk is touched)"
# The simulator's kernel has no ZFS: fs_layout=ext4 installs an ext4 root.
bin/nixbook run install.yml -i "$DIR/fleet.yml" --known-hosts "$DIR/known_hosts" --log-dir "$DIR/logs" \
  -e fs_layout=ext4 -e wipe=true --check | tail -n 6

step "nixbook run install.yml: rescue -> kexec installer -> partition -> configure -> install -> boot"
# wipe=true: ks3's Debian is erased (without it, its disk is refused before anything changes).
bin/nixbook run install.yml -i "$DIR/fleet.yml" --known-hosts "$DIR/known_hosts" --log-dir "$DIR/logs" \
  -e fs_layout=ext4 -e wipe=true

step "ks1 and ks3 (Debian before) answer as NixOS, with the host keys nixbook recorded (strict checking)"
for h in ks1 ks3; do
  addr=$(bin/nixbook inventory -i "$DIR/fleet.yml" --host $h | awk '$1 == "address:" {print $2; exit}')
  ssh -i "$DIR/id_ed25519" -o UserKnownHostsFile="$DIR/known_hosts" -o HostKeyAlias=$h \
    -o StrictHostKeyChecking=yes -o LogLevel=ERROR "root@$addr" \
    '. /etc/os-release; echo "$(hostname): $PRETTY_NAME, booted $(cut -c1-8 /proc/sys/kernel/random/boot_id)"'
done

step "nixbook-sim status"
bin/nixbook-sim status --dir "$DIR"

step "tearing the fleet down"
