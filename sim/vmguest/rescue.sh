#!/bin/sh
# The init of a vm host's rescue: the Debian kernel and initramfs of sim/vm
# in RAM, as OVH's rescue runs from RAM, with the boot's own host key,
# hostname and os-release laid over it.
. /nixbook-vm/boot.sh
early_mounts
# OVH's rescue has no ZFS host id of its own (the image carries the
# installer's).
rm -f /etc/hostid
hostname -F /etc/hostname
booted rescue
devices
online
idle
