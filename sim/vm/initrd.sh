#!/usr/bin/env bash
# Assembles the real-ZFS test VM from a root built by rootfs.sh: the Debian
# kernel and an uncompressed initramfs holding busybox, OpenSSH, udev, the ZFS
# modules and tools, util-linux, parted, gdisk, e2fsprogs and dosfstools. The
# guest boots straight into a small init script (no systemd), which keeps
# boots under software emulation to seconds.
#
#   initrd.sh ROOTDIR OUTDIR
#
# OUTDIR appears only once complete, with vmlinuz, initrd.cpio, id_ed25519
# (the client key root accepts), ssh_host_ed25519_key.pub and manifest.
set -euo pipefail

root=${1:?usage: initrd.sh ROOTDIR OUTDIR}
out=${2:?usage: initrd.sh ROOTDIR OUTDIR}
[ "$(id -u)" = 0 ] || { echo "initrd.sh: must run as root (chroot)" >&2; exit 1; }
for tool in cpio ssh-keygen strip; do
  command -v "$tool" >/dev/null || { echo "initrd.sh: $tool not found (make deps installs it)" >&2; exit 1; }
done
log() { printf '%s initrd.sh: %s\n' "$(date +%T)" "$*"; }
work=$(mktemp -d "$out.work.XXXXXX")
ird=$root/initrd.$$ # inside the root, so its ldd and depmod serve it
trap 'rm -rf --one-file-system "$work" "$ird"' EXIT
rm -rf "$ird"

kver=$(cat "$root/nixbook-kver")
log "kernel $kver; assembling the initramfs"

mkdir -p "$ird"/{usr/bin,usr/sbin,usr/lib/modules,usr/lib64,etc/ssh,etc/zfs,root/.ssh,proc,sys,dev,run,tmp,mnt,var/empty}
# The merged-/usr layout of Debian, so paths from ldd land where they should.
for d in bin sbin lib lib64; do ln -s "usr/$d" "$ird/$d"; done

# copy and copy_bin (copy.sh) copy from the chroot into the initramfs.
declare -F copy >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/copy.sh"
dest=$ird

copy_bin /usr/sbin/sshd /usr/lib/openssh/sftp-server \
  /usr/sbin/zpool /usr/sbin/zfs /usr/sbin/zdb /usr/sbin/mount.zfs /usr/sbin/zgenhostid \
  /usr/bin/udevadm /usr/lib/systemd/systemd-udevd /usr/bin/kmod \
  /usr/bin/mount /usr/bin/umount /usr/bin/lsblk /usr/bin/findmnt /usr/sbin/blkid /usr/sbin/wipefs \
  /usr/sbin/blockdev \
  /usr/sbin/parted /usr/sbin/partprobe /usr/sbin/sgdisk /usr/sbin/mke2fs /usr/sbin/e2fsck /usr/sbin/mkfs.fat \
  /usr/bin/readlink /usr/bin/realpath /usr/bin/stat /usr/bin/sha256sum /usr/bin/hostid \
  /usr/bin/dash
# dash is /bin/sh: Debian's static busybox prefers its own applets inside its
# shell, which would shadow util-linux's mount and friends.
ln -s dash "$ird/usr/bin/sh"
for t in modprobe insmod rmmod lsmod depmod; do ln -sf ../bin/kmod "$ird/usr/sbin/$t"; done
ln -sf mke2fs "$ird/usr/sbin/mkfs.ext4"
ln -sf mkfs.fat "$ird/usr/sbin/mkfs.vfat"
# udev: rules, helpers and hwdb-free builtins (by-id links come from rules).
mkdir -p "$ird/usr/lib/udev"
cp -a "$root/usr/lib/udev/rules.d" "$ird/usr/lib/udev/"
for helper in "$root"/usr/lib/udev/*_id; do
  copy_bin "${helper#"$root"}"
done

cp "$root/usr/bin/busybox" "$ird/usr/bin/busybox"
for applet in $("$ird/usr/bin/busybox" --list); do
  case $applet in busybox) continue ;; esac
  [ -e "$ird/usr/bin/$applet" ] || [ -e "$ird/usr/sbin/$applet" ] || ln -s busybox "$ird/usr/bin/$applet"
done

# Kernel modules: virtio disks and network, ZFS, with their dependencies.
mods="virtio_pci virtio_blk virtio_net zfs ext4 vfat nls_cp437 nls_ascii nls_utf8"
for ko in $(for m in $mods; do chroot "$root" modprobe -S "$kver" --show-depends "$m"; done | awk '$1 == "insmod" {print $2}' | sort -u); do
  mkdir -p "$ird$(dirname "$ko")"
  case $ko in
    *.xz) xz -dc "$root$ko" >"$ird${ko%.xz}" ;;
    *.zst) zstd -qdc "$root$ko" >"$ird${ko%.zst}" ;;
    *) cp "$root$ko" "$ird$ko" ;;
  esac
done
# DKMS leaves debug info in: megabytes the guest need not load.
find "$ird/usr/lib/modules/$kver/updates" -name '*.ko' -exec strip --strip-debug {} +
cp "$root/lib/modules/$kver/modules.order" "$root/lib/modules/$kver/modules.builtin"* "$ird/usr/lib/modules/$kver/"
chroot "$root" depmod -b "/${ird##*/}" "$kver"

# Accounts, sshd and keys.
cat >"$ird/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$ird/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
printf 'root:*:19000:0:99999:7:::\n' >"$ird/etc/shadow"
chmod 600 "$ird/etc/shadow"
printf '/bin/sh\n' >"$ird/etc/shells"
ln -s /proc/self/mounts "$ird/etc/mtab"
printf 'zfsvm\n' >"$ird/etc/hostname"
printf '127.0.0.1 localhost zfsvm\n' >"$ird/etc/hosts"
# The NixOS installer's host id, so pools look as if made there.
chroot "$root" zgenhostid -f -o "/${ird##*/}/etc/hostid" 8425e349
ssh-keygen -q -t ed25519 -N '' -C zfsvm-host -f "$ird/etc/ssh/ssh_host_ed25519_key"
ssh-keygen -q -t ed25519 -N '' -C zfsvm-client -f "$work/id_ed25519"
cp "$work/id_ed25519.pub" "$ird/root/.ssh/authorized_keys"
chmod 700 "$ird/root" "$ird/root/.ssh"
cat >"$ird/etc/ssh/sshd_config" <<'EOF'
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
AuthorizedKeysFile /root/.ssh/authorized_keys
PidFile /run/sshd.pid
Subsystem sftp /usr/lib/openssh/sftp-server
MaxSessions 64
MaxStartups 64
EOF

cat >"$ird/init" <<'EOF'
#!/bin/sh
# nixbook zfsvm init: mounts, udev, modules, network, sshd; no systemd.
export PATH=/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
mkdir -p /run/sshd /run/udev
hostname zfsvm
modprobe -a virtio_pci virtio_blk virtio_net zfs ext4 vfat nls_cp437 nls_ascii nls_utf8 || echo "zfsvm: modprobe failed" >/dev/console
/usr/lib/systemd/systemd-udevd --daemon --resolve-names=never
udevadm trigger --type=subsystems --action=add
udevadm trigger --type=devices --action=add
udevadm settle --timeout=30
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
/usr/sbin/sshd -E /run/sshd.log || echo "zfsvm: sshd failed" >/dev/console
echo "zfsvm: ready $(cut -d' ' -f1 /proc/uptime)s" >/dev/console
while :; do sleep 3600; done
EOF
chmod 755 "$ird/init"

mkdir -p "$work/out"
(cd "$ird" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) >"$work/out/initrd.cpio"
cp "$root/boot/vmlinuz-$kver" "$work/out/vmlinuz"
cp "$work/id_ed25519" "$work/id_ed25519.pub" "$work/out/"
cp "$ird/etc/ssh/ssh_host_ed25519_key.pub" "$work/out/"
{
  echo "kernel $kver"
  cat "$root/nixbook-versions"
  echo "initrd $(du -h "$work/out/initrd.cpio" | cut -f1)"
} >"$work/out/manifest"
rm -rf "$out"
mv "$work/out" "$out"
log "done: $out"
cat "$out/manifest"
