#!/bin/sh
# The init of a vm host's rescue: the Debian kernel and initramfs of sim/vm
# in RAM, as OVH's rescue runs from RAM, with the boot's own host key,
# hostname and os-release laid over it. No systemd: boots in seconds under
# software emulation.
export PATH=/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
mkdir -p /run/sshd /run/udev
# OVH's rescue has no ZFS host id of its own (the image carries the
# installer's).
rm -f /etc/hostid
hostname -F /etc/hostname
echo "nixbook-vm: boot_id $(cat /proc/sys/kernel/random/boot_id)" >/dev/console
# busybox's reboot and poweroff signal init: do what systemd would.
trap 'sync; reboot -f' TERM INT
trap 'sync; poweroff -f' USR1 USR2
modprobe -a virtio_pci virtio_blk virtio_net zfs ext4 vfat nls_cp437 nls_ascii nls_utf8 || echo "nixbook-vm: modprobe failed" >/dev/console
/usr/lib/systemd/systemd-udevd --daemon --resolve-names=never
udevadm trigger --type=subsystems --action=add
udevadm trigger --type=devices --action=add
udevadm settle --timeout=30
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
/usr/sbin/sshd -E /run/sshd.log || echo "nixbook-vm: sshd failed" >/dev/console
echo "nixbook-vm: ready $(cut -d' ' -f1 /proc/uptime)s" >/dev/console
while :; do
  sleep 3600 &
  wait $!
done
