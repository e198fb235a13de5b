#!/usr/bin/env bash
# Adds to the root rootfs.sh built what the simulator's vm hosts need beyond
# the ZFS test guest, and packs it as an initramfs overlay (tools.cpio):
# kexec-tools (the rescue's real kexec), curl, and GRUB for BIOS and UEFI (the real
# grub-install the installer stand-in runs). Also keeps Debian's OVMF, the
# UEFI firmware QEMU runs for a host with firmware: uefi.
#
#   machine.sh ROOTDIR OUTDIR
#
# OUTDIR appears only once complete. Needs root; the mirror is
# $ZFSVM_MIRROR or Debian's; downloads retry for up to $ZFSVM_RETRY_SECONDS.
set -euo pipefail

src=${1:?usage: machine.sh ROOTDIR OUTDIR}
out=${2:?usage: machine.sh ROOTDIR OUTDIR}
mirror=${ZFSVM_MIRROR:-http://deb.debian.org/debian}
retry_seconds=${ZFSVM_RETRY_SECONDS:-1200}
[ "$(id -u)" = 0 ] || { echo "machine.sh: must run as root (chroot)" >&2; exit 1; }
log() { printf '%s machine.sh: %s\n' "$(date +%T)" "$*"; }
work=$(mktemp -d "$out.work.XXXXXX")
trap 'rm -rf --one-file-system "$work"' EXIT
root=$work/root

log "copying the root"
cp -a --reflink=auto "$src" "$root"
cat >"$root/nixbook-machine.sh" <<CHROOT
#!/bin/sh
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin
pkgs="kexec-tools grub-pc-bin grub-efi-amd64-bin grub2-common ovmf curl"
start=\$(date +%s) delay=5
until apt-get update -qq && apt-get install -y -qq --download-only \$pkgs >/dev/null; do
  if [ \$((\$(date +%s) - start + delay)) -gt $retry_seconds ]; then
    echo "chroot: downloads failed: the mirror $mirror looks down (ZFSVM_MIRROR picks another)" >&2
    exit 1
  fi
  sleep \$delay
  delay=\$((delay * 2)); [ \$delay -le 120 ] || delay=120
done
apt-get install -y -qq \$pkgs >/dev/null
dpkg-query -W -f='\${Package} \${Version}\n' \$pkgs >/nixbook-machine-versions
CHROOT
chmod 755 "$root/nixbook-machine.sh"
log "installing kexec-tools, GRUB and OVMF in the chroot"
unshare --mount --propagation private -- sh -c '
  set -e
  mount -t proc proc "$1/proc"
  mount -t sysfs sys "$1/sys"
  mount -t tmpfs tmp "$1/tmp"
  chroot "$1" /nixbook-machine.sh
' sh "$root" 2>&1 | tail -n 50

tools=$work/tools
mkdir -p "$tools"/usr/{bin,sbin,lib,lib64}
# The merged-/usr layout of the image, so its links come out the same.
for d in bin sbin lib lib64; do ln -s "usr/$d" "$tools/$d"; done
# copy and copy_bin (copy.sh) copy from the chroot into the overlay.
declare -F copy >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/copy.sh"
dest=$tools
# Debian's static busybox runs its own applets before PATH's programs (env
# setsid ... would be busybox's setsid): env, setsid and the others replace
# its links.
copy_bin /usr/sbin/kexec /usr/sbin/grub-install /usr/bin/grub-mkimage /usr/sbin/grub-probe \
  /usr/bin/grub-editenv /usr/bin/grub-mkrelpath /usr/bin/grub-file \
  /usr/bin/curl /usr/bin/setsid /usr/bin/flock /usr/bin/tar /usr/bin/gzip \
  /usr/bin/env /usr/bin/nohup /usr/bin/timeout
copy /usr/lib/grub/i386-pc /usr/lib/grub/x86_64-efi
chroot "$root" find /usr/lib/grub -type f -perm -u+x | while read -r b; do copy_bin "$b"; done
(cd "$tools" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) >"$work/tools.cpio"

mkdir -p "$work/out"
mv "$work/tools.cpio" "$work/out/"
cp "$root/usr/share/OVMF/OVMF_CODE_4M.fd" "$work/out/OVMF_CODE.fd"
cp "$root/usr/share/OVMF/OVMF_VARS_4M.fd" "$work/out/OVMF_VARS.fd"
cp "$root/nixbook-machine-versions" "$work/out/manifest"
echo "tools $(du -h "$work/out/tools.cpio" | cut -f1)" >>"$work/out/manifest"
rm -rf "$out"
mv "$work/out" "$out"
log "done: $out"
cat "$out/manifest"
