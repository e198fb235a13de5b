#!/usr/bin/env bash
# Installs the Debian packages nixbook's tests, benchmark and demo use, when missing.
# Quick when everything is there already. Downloads are retried with back-off
# for up to 20 minutes ($RETRY_SECONDS) before the mirror is called down.
set -euo pipefail
. "$(dirname "$0")/retry.sh"
pkgs=(
  openssh-server openssh-client   # real sshd for the tests and the simulated fleet
  iproute2 util-linux             # network namespaces, loop devices, unshare
  parted fdisk gdisk dosfstools e2fsprogs xfsprogs btrfs-progs  # disks in simulated hosts
  mtools                          # EFI system partitions: this kernel cannot mount vfat
  cryptsetup-bin                  # LUKS in simulated hosts (the payload's stand-in opens without device-mapper)
  squashfs-tools xorriso busybox-static bash-static  # the NixOS payload fixtures
  curl wget ca-certificates bc    # downloads on the targets, timing in the benchmark
  zsh fish                        # the completion scripts, driven by the CLI tests
  nix-bin                         # parses and evaluates generated configuration.nix
  qemu-system-x86 debootstrap cpio binutils  # the real-ZFS QEMU guests (sim/vm)
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
  # Download first, with retries; the install then needs no network.
  fetch() { "${apt[@]}" update -qq && "${apt[@]}" install -y -qq --download-only --no-install-recommends "${missing[@]}" >/dev/null; }
  retry "apt-get download from $(mirrors)" fetch || {
    echo "deps.sh: the package mirror ($(mirrors)) looks down; try again later or change /etc/apt/sources.list" >&2
    exit 1
  }
  "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
mkdir -p /run/sshd
