# Sourced by the inits of a vm host's systems (rescue, installer, installed
# system): the steps every one of them takes, in the order they take them.
# No systemd: boots in seconds under software emulation.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin

early_mounts() {
  mount -t proc proc /proc
  mount -t sysfs sys /sys
  mount -t devtmpfs dev /dev
  mkdir -p /dev/pts /dev/shm
  mount -t devpts devpts /dev/pts
  mount -t tmpfs run /run
  mount -t tmpfs tmp /tmp
  mkdir -p /run/sshd /run/udev
}

# say MESSAGE: a line on the console, where the simulator reads a boot's
# mode, boot id and failures.
say() { echo "nixbook-vm: $*" >/dev/console; }

# booted MODE: the boot id the kernel made, and what this boot is.
booted() { say "boot_id $(cat /proc/sys/kernel/random/boot_id) mode $1"; }

# devices: the modules, then udev, which makes /dev/disk/by-id.
devices() {
  modprobe -a virtio_pci virtio_blk virtio_net zfs ext4 vfat nls_cp437 nls_ascii nls_utf8 || say "modprobe failed"
  /usr/lib/systemd/systemd-udevd --daemon --resolve-names=never
  udevadm trigger --type=subsystems --action=add
  udevadm trigger --type=devices --action=add
  udevadm settle --timeout=30
}

# online: the network (the addresses in /etc/nixbook-vm/net, else QEMU's
# defaults), then sshd. busybox's reboot and poweroff
# signal init: they end the machine as systemd would.
online() {
  trap 'sync; reboot -f' TERM INT
  trap 'sync; poweroff -f' USR1 USR2
  ipv4=10.0.2.15/24 gateway4=10.0.2.2 ipv6= gateway6=
  [ -e /etc/nixbook-vm/net ] && . /etc/nixbook-vm/net
  ip link set lo up
  ip link set eth0 up
  ip addr add "$ipv4" dev eth0
  ip route add default via "$gateway4"
  if [ -n "$ipv6" ]; then
    ip -6 addr add "$ipv6" dev eth0
    ip -6 route add "$gateway6" dev eth0
    ip -6 route add default via "$gateway6" dev eth0
  fi
  /usr/sbin/sshd -E /run/sshd.log || say "sshd failed"
  say "ready $(cut -d' ' -f1 /proc/uptime)s"
}

# idle: PID 1 waits, answering the signals above.
idle() {
  while :; do
    sleep 3600 &
    wait $!
  done
}
