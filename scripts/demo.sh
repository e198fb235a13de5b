#!/usr/bin/env bash
# make demo: bring up five simulated Kimsufi servers, write ks1's host folder
# with nixbook generate into a small flake, reinstall them all with NixOS
# through the kexec installer (install.yml): ks1 from the flake, the others
# from the configuration nixbook generates, ks2's root in a LUKS volume, ks4
# with two disks, the second of which dies after the install, and ks5 a QEMU
# machine booting in UEFI mode with its root on real ZFS. Show them answering
# as NixOS with the host keys nixbook recorded, and tear the fleet down.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=$(mktemp -d /tmp/nixbook-demo.XXXXXX)
cleanup() { bin/nixbook-sim down --dir "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "nixbook-sim up 5: servers in the OVH rescue system, ks3 rented with Debian, ks4 with two disks, ks5 a UEFI machine"
# ks3 starts as most rented servers do: OVH's Debian on its disk, answering SSH.
# ks4 loses its second disk after the install: it must boot from the first.
# ks5 is a QEMU machine (its image is built once, then cached: see
# sim/README.md) booting with UEFI firmware, whose kernel has ZFS.
printf 'hosts:\n  ks3: {mode: disk, data: old-os}\n  ks4: {disk_count: 2, lose_disk: sdb}\n  ks5: {kind: vm, firmware: uefi, disk_size: 4GiB}\n' >"$DIR/overrides.yml"
bin/nixbook-sim up 5 --dir "$DIR" --hosts "$DIR/overrides.yml"

step "nixbook generate -l ks1 --out flake/hosts: ks1's folder for a flake, from its facts"
# The simulator's kernel has no ZFS: fs_layout=ext4 installs an ext4 root.
FLAKE="$DIR/flake"
mkdir -p "$FLAKE"
bin/nixbook generate -i "$DIR/fleet.yml" --known-hosts "$DIR/known_hosts" -l ks1 --out "$FLAKE/hosts" -e fs_layout=ext4
sed -n '/^{/,$p' "$FLAKE/hosts/ks1/hardware-configuration.nix"

step "a small flake: nixosConfigurations.ks1 imports ./hosts/ks1 and a module of its own"
# As e2e/install_flake_test.go builds it: nixpkgs resolves to the simulator's
# offline stand-in. Only what git tracks is copied to the server.
cat >"$FLAKE/flake.nix" <<'NIX'
{
  description = "servers";
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
  outputs = { self, nixpkgs, ... }: {
    nixosConfigurations.ks1 = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [ ./hosts/ks1 ./common.nix ];
    };
  };
}
NIX
printf '{ pkgs, ... }: {\n  time.timeZone = "UTC";\n  environment.systemPackages = [ pkgs.htop ];\n}\n' >"$FLAKE/common.nix"
git -C "$FLAKE" init -q
git -C "$FLAKE" add flake.nix common.nix hosts
git -C "$FLAKE" ls-files | sed 's/^/  /'
# Only ks1 takes the flake, and ks2's root is encrypted with a key from a
# local file; the namespace hosts' kernel has no ZFS, so they get an ext4
# root, and ks5 the default ZFS one: an inventory beside the fleet's says so.
head -c 32 /dev/urandom | base64 >"$DIR/ks2-root.key"
printf 'all:\n  vars:\n    fs_layout: ext4\n  hosts:\n    ks1:\n      flake: "%s#ks1"\n    ks2:\n      luks_key_file: "%s"\n    ks5:\n      fs_layout: zfs\n' "$FLAKE" "$DIR/ks2-root.key" >"$DIR/flake.yml"
INV=(-i "$DIR/fleet.yml" -i "$DIR/flake.yml")

step "nixbook run install.yml --check: what would happen, per server (no disk is touched)"
bin/nixbook run install.yml "${INV[@]}" --known-hosts "$DIR/known_hosts" --log-dir "$DIR/logs" \
  -e wipe=true --check | tail -n 8

step "nixbook run install.yml: rescue -> kexec installer -> partition -> configure -> install -> boot"
# wipe=true: ks3's Debian is erased (without it, its disk is refused before anything changes).
bin/nixbook run install.yml "${INV[@]}" --known-hosts "$DIR/known_hosts" --log-dir "$DIR/logs" \
  -e wipe=true

step "ks1, ks3 (Debian before), ks4 (one disk lost) and ks5 (UEFI, ZFS) answer as NixOS, with the host keys nixbook recorded (strict checking)"
for h in ks1 ks3 ks4 ks5; do
  read -r addr port < <(bin/nixbook inventory -i "$DIR/fleet.yml" --host $h | awk '$1 == "address:" {a=$2} $1 == "port:" {p=$2} END {print a, (p ? p : 22)}')
  alias=$h
  [ "$port" = 22 ] || alias="[$h]:$port" # as known_hosts names a host on another port
  ssh -i "$DIR/id_ed25519" -p "$port" -o UserKnownHostsFile="$DIR/known_hosts" -o HostKeyAlias="$alias" \
    -o StrictHostKeyChecking=yes -o LogLevel=ERROR "root@$addr" \
    '. /etc/os-release; echo "$(hostname): $PRETTY_NAME, booted $(cut -c1-8 /proc/sys/kernel/random/boot_id)$(test -d /sys/firmware/efi && echo ", UEFI")$(command -v zpool >/dev/null && zpool list -H -o name,health 2>/dev/null | sed "s/^/, pool /" | tr "\t\n" "  ")"'
done

step "ks1 runs the flake's system: /etc/nixos holds the flake and nixbook's files in hosts/ks1"
addr=$(bin/nixbook inventory -i "$DIR/fleet.yml" --host ks1 | awk '$1 == "address:" {print $2; exit}')
ssh -i "$DIR/id_ed25519" -o UserKnownHostsFile="$DIR/known_hosts" -o HostKeyAlias=ks1 \
  -o StrictHostKeyChecking=yes -o LogLevel=ERROR "root@$addr" \
  'cd /etc/nixos && find . -type f -name "*.nix" | sort | sed "s/^/  /"'

step "nixbook-sim status"
bin/nixbook-sim status --dir "$DIR"

step "tearing the fleet down"
