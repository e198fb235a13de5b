#!/bin/sh
# The init of the system a vm host's installer put on its disks: the
# firmware ran GRUB from the disk, GRUB this kernel and initramfs from
# /boot. Like NixOS's stage 1 it imports the root pool with the host id
# the configuration gave (networking.hostId, in /etc/hostid), forcing it
# only as boot.zfs.forceImportRoot says, and mounts the root; a root it
# cannot import or mount stops the boot there, off the network. The
# userland after that is the image's, with the installed root's identity:
# its host key, hostname, os-release and root's authorized keys.
. /nixbook-vm/boot.sh
early_mounts
booted disk
devices

fail() {
  say "stage 1 failed: $*"
  idle
}
root=
for arg in $(cat /proc/cmdline); do
  case $arg in root=*) root=${arg#root=} ;; esac
done
mkdir -p /sysroot
case $root in
  ZFS=*)
    dataset=${root#ZFS=}
    pool=${dataset%%/*}
    force=
    [ -e /nixbook-vm/force-import ] && force=-f
    if ! out=$(zpool import -N -d /dev/disk/by-id $force "$pool" 2>&1); then
      fail "cannot import the root pool $pool (host id $(hostid)): $(echo "$out" | tr '\n' ' ')"
    fi
    mount -t zfs "$dataset" /sysroot || fail "cannot mount $dataset"
    ;;
  UUID=*)
    dev=$(blkid -U "${root#UUID=}") || fail "no file system with UUID ${root#UUID=}"
    mount "$dev" /sysroot || fail "cannot mount $dev"
    ;;
  *) fail "no root= on the kernel's command line" ;;
esac
for f in /sysroot/etc/ssh/ssh_host_*; do
  [ -e "$f" ] && cp -p "$f" /etc/ssh/
done
cp /sysroot/etc/os-release /etc/os-release 2>/dev/null || true
[ -s /sysroot/etc/hostname ] && cp /sysroot/etc/hostname /etc/hostname && hostname -F /etc/hostname
mkdir -p /root/.ssh
cat /sysroot/etc/ssh/authorized_keys.d/root >/root/.ssh/authorized_keys 2>/dev/null || true
online
idle
