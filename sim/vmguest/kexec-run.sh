#!/bin/sh
# kexec/run of the nixos-images kexec installer, for a vm host of
# nixbook-sim. Like the real one it needs root, packs the running system's
# SSH host keys, root's authorized keys and its network into an archive
# appended to kexec/initrd (the installer keeps them), loads the kernel with the real
# kexec and boots it six seconds later. The kernel and initrd it loads are a
# STAND-IN: Debian's kernel and an initramfs with sshd, ZFS, GRUB and the
# payload's NixOS tools.
set -eu

kexec_extra_flags=
while [ $# -gt 0 ]; do
    case "$1" in
        --kexec-extra-flags) kexec_extra_flags=$2; shift ;;
        *) echo "unknown option: $1" >&2; exit 1 ;;
    esac
    shift
done

if [ "$(id -u)" -ne 0 ]; then
    echo "This script needs to be run as root" >&2
    exit 1
fi
SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
for f in bzImage initrd kexec; do
    if [ ! -e "$SCRIPT_DIR/$f" ]; then
        echo "$SCRIPT_DIR/$f is missing: unpack the whole tarball" >&2
        exit 1
    fi
done

extra=$(mktemp -d)
mkdir -p "$extra/ssh" "$extra/etc/nixbook-vm"
cp -p /etc/ssh/ssh_host_* "$extra/ssh/"
[ -e /root/.ssh/authorized_keys ] && cp /root/.ssh/authorized_keys "$extra/ssh/authorized_keys"
# The network, as the real script records the rescue's addresses and routes.
[ -e /etc/nixbook-vm/net ] && cp /etc/nixbook-vm/net "$extra/etc/nixbook-vm/net"
(cd "$extra" && find ssh etc | cpio -o -H newc 2>/dev/null) >"$extra.cpio"
cat "$SCRIPT_DIR/initrd" "$extra.cpio" >"$SCRIPT_DIR/initrd.keys"
rm -rf "$extra" "$extra.cpio"

# shellcheck disable=SC2086
if ! "$SCRIPT_DIR/kexec" --load "$SCRIPT_DIR/bzImage" $kexec_extra_flags \
    --initrd="$SCRIPT_DIR/initrd.keys" \
    --command-line="console=ttyS0 quiet net.ifnames=0 panic=-1"; then
    echo "kexec failed to load the installer: $(dmesg | tail -n 5)" >&2
    exit 1
fi

delay=${NIXBOOK_SIM_KEXEC_DELAY:-6}
case "$delay" in ''|*[!0-9]*) delay=6 ;; esac
echo "machine will boot into nixos in ${delay}s..."
nohup sh -c "sleep $delay && '$SCRIPT_DIR/kexec' -e" >/dev/null 2>&1 &
