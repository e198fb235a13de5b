#!/bin/sh
# The init of a vm host's NixOS installer, booted by the real kexec from the
# rescue: a STAND-IN for nixos-images' installer. Debian's kernel and the
# image's initramfs (sshd, ZFS, GRUB) with the payload's NixOS store and
# tools; /etc/hostid is the installer's (8425e349), as on NixOS's.
. /nixbook-vm/boot.sh
early_mounts
# kexec/run packed the rescue's host keys and root's keys under /ssh, as
# nixos-images' does; the installer keeps them.
for f in /ssh/ssh_host_*; do
  [ -e "$f" ] && cp -p "$f" /etc/ssh/
done
[ -e /ssh/authorized_keys ] && cp /ssh/authorized_keys /root/.ssh/authorized_keys
hostname -F /etc/hostname
booted installer
# The payload's installer system: /etc, /run/current-system, its tools.
"$(cat /nixbook-vm/system)/activate" >/dev/console 2>&1 || say "activation failed"
devices
online
idle
