#!/usr/bin/env bash
# Builds the Debian root the real-ZFS test VM is assembled from (initrd.sh
# does that): bookworm with contrib, the Debian kernel, ZFS built by DKMS for
# that kernel (the slow part, minutes), OpenSSH, udev and disk tools.
#
#   rootfs.sh ROOTDIR
#
# ROOTDIR appears only once complete. Needs root, debootstrap and unshare;
# the mirror is $ZFSVM_MIRROR or Debian's. Downloads are retried with
# back-off for up to $ZFSVM_RETRY_SECONDS (1200) each before the mirror is
# called down.
set -euo pipefail

out=${1:?usage: rootfs.sh ROOTDIR}
mirror=${ZFSVM_MIRROR:-http://deb.debian.org/debian}
retry_seconds=${ZFSVM_RETRY_SECONDS:-1200}
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

# retry WHAT CMD... runs CMD until it succeeds, waiting 5 s, 10 s, 20 s ...
# (at most 2 minutes) between attempts, and gives up, naming the mirror,
# once the next wait would pass $retry_seconds: mirrors drop connections
# now and then, for minutes at worst.
retry() {
  local what=$1 start=$SECONDS delay=5 attempt=1
  shift
  until "$@"; do
    if [ $((SECONDS - start + delay)) -gt "$retry_seconds" ]; then
      echo "rootfs.sh: $what failed $attempt times in $((SECONDS - start)) s: the mirror $mirror looks down (ZFSVM_MIRROR picks another)" >&2
      return 1
    fi
    log "$what failed (attempt $attempt), again in ${delay}s"
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2 > 120 ? 120 : delay * 2))
  done
}

# debootstrap does not retry a download that could not connect; a failed
# attempt starts again from an empty root, but keeps the packages it got in
# $debs, so that each attempt downloads only what the last one missed.
debs=$(realpath "$work")/debs
mkdir -p "$debs"
bootstrap() {
  rm -rf --one-file-system "$root"
  if ! debootstrap --variant=minbase --components=main,contrib --cache-dir="$debs" \
    "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 20 "$work/debootstrap.log" >&2
    return 1
  fi
}
log "debootstrap $suite from $mirror"
retry debootstrap bootstrap
log "debootstrap done"

cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main contrib
deb $mirror $suite-updates main contrib
EOF
cat >"$root/etc/apt/apt.conf.d/90nixbook" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "8";
Acquire::http::Timeout "60";
Dpkg::Use-Pty "false";
EOF
# No service starts inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

# The chroot part runs in its own mount namespace: /proc and friends vanish
# with it, whatever happens.
cat >"$root/nixbook-build.sh" <<CHROOT
#!/bin/sh
set -eu
mirror=$mirror
retry_seconds=$retry_seconds
CHROOT
cat >>"$root/nixbook-build.sh" <<'CHROOT'
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin
log() { printf '%s chroot: %s\n' "$(date +%T)" "$*"; }
# retry CMD...: as rootfs.sh's retry, on top of apt's own Acquire::Retries.
retry() {
  start=$(date +%s) delay=5 attempt=1
  until "$@"; do
    if [ $(($(date +%s) - start + delay)) -gt "$retry_seconds" ]; then
      echo "chroot: $1 $2 failed $attempt times: the mirror $mirror looks down (ZFSVM_MIRROR picks another)" >&2
      return 1
    fi
    log "$1 $2 failed (attempt $attempt), again in ${delay}s"
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2))
    [ "$delay" -le 120 ] || delay=120
  done
}
pkgs="linux-image-amd64 linux-headers-amd64 busybox-static openssh-server openssh-sftp-server udev kmod util-linux parted gdisk e2fsprogs dosfstools"
zfs="zfs-dkms zfsutils-linux"
# The guest boots the initramfs initrd.sh makes, never Debian's: the kernel
# and zfs-dkms would have initramfs-tools make it three times over.
dpkg-divert --local --rename --add /usr/sbin/update-initramfs >/dev/null
printf '#!/bin/sh\necho "update-initramfs: skipped, the test VM boots its own"\n' >/usr/sbin/update-initramfs
chmod 755 /usr/sbin/update-initramfs
log "apt-get update"
retry apt-get update -qq
# Everything is downloaded first, with retries; the installs that follow
# need no network, and a failing one (a DKMS build) is not retried.
log "downloading packages"
retry apt-get install -y -qq --download-only $pkgs $zfs >/dev/null
log "kernel, headers and tools"
apt-get install -y -qq $pkgs >/dev/null
kver=$(ls /lib/modules | sort -V | tail -n 1)
log "zfs-dkms for $kver (builds the modules, several minutes)"
apt-get install -y -qq $zfs >/dev/null
if [ ! -e "/lib/modules/$kver/updates/dkms/zfs.ko" ]; then
  log "dkms autoinstall for $kver"
  dkms autoinstall -k "$kver"
fi
test -e "/lib/modules/$kver/updates/dkms/zfs.ko"
log "zfs modules built"
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
rm -rf "$out"
mv "$root" "$out"
log "done: $out ($(cat "$out/nixbook-kver"))"
