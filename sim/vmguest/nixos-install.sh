#!/bin/sh
# nixos-install on a vm host's installer: a STAND-IN. First the payload's
# nixos-install stand-in (it checks the configuration and writes the
# installed system's files, see sim/payload/README.md), then what makes the
# disks boot for real: Debian's kernel and an initramfs that imports the
# root pool with the configuration's networking.hostId (forced only as
# boot.zfs.forceImportRoot says) in /boot, and the real grub-install on
# every GRUB device the configuration names (BIOS), or at the removable
# path of every EFI system partition (UEFI), leaving the firmware's NVRAM
# alone unless boot.loader.efi.canTouchEfiVariables is true.
set -eu
root=/mnt
noBootLoader=
prev=
for arg in "$@"; do
    case "$prev" in --root) root=$arg ;; esac
    case "$arg" in --no-bootloader) noBootLoader=1 ;; esac
    prev=$arg
done
"$(cat /nixbook-vm/system)/sw/bin/nixos-install" "$@"
[ -z "$noBootLoader" ] || exit 0
root=$(realpath "$root")
cfg=$root/etc/nixos/configuration.nix

# What the installed system's stage 1 gets from the configuration.
hostid=$(sed -n 's/.*networking\.hostId *= *"\([0-9a-fA-F]\{8\}\)".*/\1/p' "$cfg" | head -n 1)
force=1
grep -Eq 'forceImportRoot *= *false' "$cfg" && force=
src=$(findmnt -n -o SOURCE --target "$root")
case $(findmnt -n -o FSTYPE --target "$root") in
    zfs) cmdroot=ZFS=$src ;;
    *) cmdroot=UUID=$(blkid -s UUID -o value "$src") ;;
esac
mkdir -p "$root/etc/ssh/authorized_keys.d"
# UEFI (grub.efiSupport): the ESP of /boot is efiSysMountPoint (default
# /boot); each of mirroredBoots names its own.
efi=
grep -Eq 'efiSupport *= *true' "$cfg" && efi=1
efiMount=$(sed -n 's/.*efiSysMountPoint *= *"\([^"]*\)";.*/\1/p' "$cfg" | head -n 1)
nvram=--no-nvram
grep -Eq 'canTouchEfiVariables *= *true' "$cfg" && nvram=
grep -o '"ssh-[a-z0-9-]* [A-Za-z0-9+/=]*[^"]*"' "$cfg" | tr -d '"' >"$root/etc/ssh/authorized_keys.d/root" || true

stage=$(mktemp -d)
mkdir -p "$stage/etc/nixbook-vm" "$stage/nixbook-vm"
# The network is the installer's, which kexec/run carried from the rescue:
# the installed system does not evaluate its configuration's.
[ -e /etc/nixbook-vm/net ] && cp /etc/nixbook-vm/net "$stage/etc/nixbook-vm/net"
cp /nixbook-vm/system-init "$stage/init"
cp /nixbook-vm/boot.sh "$stage/nixbook-vm/boot.sh"
if [ -n "$hostid" ]; then
    zgenhostid -f -o "$stage/etc/hostid" "$hostid"
fi
[ -z "$force" ] || : >"$stage/nixbook-vm/force-import"
(cd "$stage" && find . | cpio -o -H newc 2>/dev/null) >"$stage.cpio"
# boot DIR ESP DEVICE...: the kernel, the initramfs and GRUB's
# configuration in DIR (a /boot of the installed root), and GRUB reading
# that DIR on each device (BIOS) or at the removable path of the ESP
# mounted at ESP (UEFI), as install-grub does for /boot and each of
# mirroredBoots.
boot() {
    local reads=$1 dir=$root$1 esp=$2
    shift 2
    cat /nixbook-vm/initrd.cpio "$stage.cpio" >"$dir/nixbook-vm-initrd"
    cp /nixbook-vm/vmlinuz "$dir/nixbook-vm-vmlinuz"
    rel=$(grub-mkrelpath "$dir")
    [ "$rel" = / ] && rel=
    uuid=$(grub-probe --target=fs_uuid "$dir")
    mkdir -p "$dir/grub"
    cat >"$dir/grub/grub.cfg" <<CFG
# GRUB's configuration, written by the nixos-install stand-in of a vm host.
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
search --no-floppy --fs-uuid --set=root $uuid
menuentry "NixOS" {
  linux $rel/nixbook-vm-vmlinuz console=ttyS0 quiet net.ifnames=0 panic=-1 root=$cmdroot
  initrd $rel/nixbook-vm-initrd
}
CFG
    for dev in "$@"; do
        case $dev in ''|nodev) continue ;; esac
        echo "installing the boot loader on $dev (reading $reads)..."
        grub-install --target=i386-pc --boot-directory="$dir" "$dev"
    done
    [ -n "$efi" ] || return 0
    echo "installing the boot loader at the removable path of the ESP at $esp (reading $reads)..."
    # shellcheck disable=SC2086
    grub-install --target=x86_64-efi --efi-directory="$root$esp" --boot-directory="$dir" --removable $nvram
    [ -e "$root$esp/EFI/BOOT/BOOTX64.EFI" ] || { echo "grub-install left no \\EFI\\BOOT\\BOOTX64.EFI on $esp" >&2; exit 1; }
}
# mirroredBoots, one entry a line as nixos_config writes them:
# { devices = [ "/dev/disk/by-id/..." ]; path = "/boot-2"; }
mirrors=$(sed -n 's/.*{ *devices = \[\(.*\)\]; *path = "\([^"]*\)";.*/\2 \1/p' "$cfg" | tr -d '"')
if [ -n "$mirrors" ]; then
    echo "$mirrors" | while read -r path devices; do
        # shellcheck disable=SC2086
        boot "$path" "$path" $devices
    done
else
    # shellcheck disable=SC2046
    boot /boot "${efiMount:-/boot}" $(grep -v '^nodev$' "$root/boot/grub/nixbook-sim-devices" || true)
fi
rm -rf "$stage" "$stage.cpio"
echo "the disks boot for real: GRUB, Debian's kernel, root=$cmdroot${hostid:+, host id $hostid}"
