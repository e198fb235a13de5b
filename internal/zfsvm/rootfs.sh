#!/usr/bin/env bash
# Builds the Debian root the real-ZFS test VM is assembled from (initrd.sh
# does that): bookworm with contrib, the Debian kernel, ZFS built by DKMS for
# that kernel (the slow part, minutes), OpenSSH, udev and disk tools.
#
#   rootfs.sh ROOTDIR
#
# ROOTDIR appears only once complete. Needs root, debootstrap and unshare;
# the mirror is $ZFSVM_MIRROR or Debian's.
set -euo pipefail

out=${1:?usage: rootfs.sh ROOTDIR}
mirror=${ZFSVM_MIRROR:-http://deb.debian.org/debian}
suite=bookworm

[ "$(id -u)" = 0 ] || { echo "rootfs.sh: must run as root (debootstrap, chroot)" >&2; exit 1; }
for tool in debootstrap unshare; do
  command -v "$tool" >/dev/null || { echo "rootfs.sh: $tool not found (make deps installs it)" >&2; exit 1; }
done

mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$out.work.XXXXXX")
# Mounts live only in the namespace of the chroot step, so by the time this
# runs nothing is mounted under $work and removing it is safe.
trap 'rm -rf --one-file-system "$work"' EXIT
root=$work/root

log() { printf '%s rootfs.sh: %s\n' "$(date +%T)" "$*"; }

# debootstrap has no retry of its own; the mirror can drop a connection.
for attempt in 1 2 3; do
  log "debootstrap $suite (attempt $attempt)"
  rm -rf --one-file-system "$root"
  if debootstrap --variant=minbase --components=main,contrib "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
    break
  fi
  tail -n 20 "$work/debootstrap.log" >&2
  [ "$attempt" = 3 ] && { echo "rootfs.sh: debootstrap failed" >&2; exit 1; }
  sleep 5
done

cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main contrib
deb $mirror $suite-updates main contrib
EOF
cat >"$root/etc/apt/apt.conf.d/90nixbook" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "5";
Dpkg::Use-Pty "false";
EOF
# No service starts inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

# The chroot part runs in its own mount namespace: /proc and friends vanish
# with it, whatever happens.
cat >"$root/nixbook-build.sh" <<'CHROOT'
#!/bin/sh
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin
log() { printf '%s chroot: %s\n' "$(date +%T)" "$*"; }
retry() { for i in 1 2 3; do "$@" && return 0; sleep 5; done; return 1; }
log "apt-get update"
retry apt-get update -qq
log "kernel, headers and tools"
retry apt-get install -y -qq linux-image-amd64 linux-headers-amd64 busybox-static \
  openssh-server openssh-sftp-server udev kmod util-linux parted gdisk e2fsprogs dosfstools >/dev/null
kver=$(ls /lib/modules | sort -V | tail -n 1)
log "zfs-dkms for $kver (builds the modules, several minutes)"
retry apt-get install -y -qq zfs-dkms zfsutils-linux >/dev/null
if [ ! -e "/lib/modules/$kver/updates/dkms/zfs.ko" ]; then
  log "dkms autoinstall for $kver"
  dkms autoinstall -k "$kver"
fi
test -e "/lib/modules/$kver/updates/dkms/zfs.ko"
echo "$kver" >/nixbook-kver
dpkg-query -W -f='${Package} ${Version}\n' linux-image-amd64 zfs-dkms zfsutils-linux openssh-server busybox-static udev >/nixbook-versions
CHROOT
chmod 755 "$root/nixbook-build.sh"

log "installing packages in the chroot"
unshare --mount --propagation private -- sh -c '
  set -e
  mount -t proc proc "$1/proc"
  mount -t sysfs sys "$1/sys"
  mount -t tmpfs tmp "$1/tmp"
  chroot "$1" /nixbook-build.sh
' sh "$root" 2>&1 | tail -n 200

rm -f "$root/nixbook-build.sh"
rm -rf "$root/var/cache/apt/archives/"*.deb
mv "$root" "$out"
log "done: $out ($(cat "$out/nixbook-kver"))"
