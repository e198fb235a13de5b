package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/sim/internal/devtree"
	"github.com/nixbook/nixbook/sim/nixeval"
)

func TestDisksAreIsolatedAndTheMachinesAreInvisible(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 2})
	c1, _ := dial(t, f, "ks1")
	defer c1.Close()
	c2, _ := dial(t, f, "ks2")
	defer c2.Close()

	// Only what a server has, and its own disk; loop nodes only for free
	// loop devices.
	got := strings.Fields(run(t, c1, "ls /dev | grep -v '^loop[0-9]'"))
	want := []string{"disk", "fd", "full", "kmsg", "loop-control", "mapper", "null", "ptmx", "pts", "random", "sda", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ls /dev = %v, want %v", got, want)
	}
	if out, err := runErr(c1, "for l in /dev/loop[0-9]*; do [ -e \"$l\" ] || continue; ! losetup \"$l\" 2>/dev/null || echo \"$l is bound\"; done"); err != nil || out != "" {
		t.Errorf("loop nodes of bound devices in a fresh host: %q %v", out, err)
	}
	for _, cmd := range []string{
		"test ! -e /dev/vda",
		"test ! -e /dev/sdb",
		"! grep -qw vda /proc/partitions",
		"! grep -q loop /proc/partitions",
		"test \"$(lsblk -dn -o NAME)\" = sda",
		"test \"$(ls /sys/block)\" = sda",
	} {
		if _, err := runErr(c1, cmd); err != nil {
			t.Errorf("%s: %v", cmd, err)
		}
	}
	// The other host's disk has another device number, which ks1 has no node for.
	devOf := func(c *ssh.Client) string { return strings.TrimSpace(run(t, c, "stat -c %t:%T /dev/sda")) }
	if d1, d2 := devOf(c1), devOf(c2); d1 == d2 {
		t.Fatalf("both hosts' sda are device %s", d1)
	}

	// Even a node made by hand opens neither the machine's disk nor ks2's.
	var root unix.Stat_t
	if err := unix.Stat("/", &root); err != nil {
		t.Fatal(err)
	}
	h2, _ := f.Host("ks2")
	maj2, min2, err := devtree.DevNum(filepath.Join("/sys/block", filepath.Base(h2.Disks()[0].Loop)))
	if err != nil {
		t.Fatal(err)
	}
	for _, dev := range [][2]uint32{{unix.Major(root.Dev), unix.Minor(root.Dev)}, {maj2, min2}} {
		cmd := fmt.Sprintf("mknod /tmp/other b %d %d 2>/dev/null; head -c 512 /tmp/other >/dev/null 2>&1 && echo READ; rm -f /tmp/other", dev[0], dev[1])
		if out := run(t, c1, cmd); strings.Contains(out, "READ") {
			t.Errorf("ks1 reads block device %d:%d through a node of its own", dev[0], dev[1])
		}
	}

	// A write to ks1's sda lands in ks1's image only.
	marker := "written-by-ks1-" + f.ID()
	run(t, c1, "printf %s "+marker+" | dd of=/dev/sda bs=512 seek=2048 conv=fsync status=none")
	read := func(host string) string {
		h, _ := f.Host(host)
		img, err := os.Open(h.Disks()[0].Image)
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		buf := make([]byte, len(marker))
		if _, err := img.ReadAt(buf, 2048*512); err != nil {
			t.Fatal(err)
		}
		return string(buf)
	}
	if got := read("ks1"); got != marker {
		t.Errorf("ks1's image at 1MiB = %q, want the marker", got)
	}
	if got := read("ks2"); got == marker {
		t.Errorf("ks2's image got ks1's write")
	}
	if out := run(t, c2, "dd if=/dev/sda bs=512 skip=2048 count=1 status=none | tr -d '\\0'"); out != "" {
		t.Errorf("ks2 reads %q from its sda where ks1 wrote", out)
	}
}

func TestLoopMountsInsideAHost(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 2})
	c1, _ := dial(t, f, "ks1")
	defer c1.Close()
	c2, _ := dial(t, f, "ks2")
	defer c2.Close()
	for _, img := range []string{"/tmp/fs.img", "/var/tmp/fs.img"} {
		run(t, c1, "truncate -s 32M "+img+" && mkfs.ext4 -q -L looped "+img+" && mkdir -p /mnt/l && mount -o loop "+img+" /mnt/l && touch /mnt/l/ok")
		dev := strings.TrimSpace(run(t, c1, "findmnt -n -o SOURCE /mnt/l"))
		if !strings.HasPrefix(dev, "/dev/loop") {
			t.Fatalf("%s mounted from %q", img, dev)
		}
		run(t, c2, "udevadm settle")
		if out, err := runErr(c2, "test ! -e "+dev); err != nil {
			t.Errorf("ks2 sees ks1's %s: %s %v", dev, out, err)
		}
		if out := run(t, c1, "udevadm settle; losetup -l -n -O NAME,BACK-FILE"); !strings.Contains(out, dev) || !strings.Contains(out, img) {
			t.Errorf("losetup -l in ks1: %q", out)
		}
		run(t, c1, "umount /mnt/l")
	}
	// A loop device left bound goes with the host's reboot.
	dev := strings.TrimSpace(run(t, c1, "truncate -s 8M /root/left.img && losetup -f --show /root/left.img"))
	sysfs := filepath.Join("/sys/block", filepath.Base(dev), "loop", "backing_file")
	if _, err := os.Stat(sysfs); err != nil {
		t.Fatalf("%s not bound: %v", dev, err)
	}
	if err := f.Reboot(context.Background(), "ks1", ModeRescue); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(sysfs); err == nil && strings.Contains(string(data), "left.img") {
		t.Errorf("%s still bound to %s after the host's reboot", dev, data)
	}
}

func TestPartitionNodesFollowTheDisk(t *testing.T) {
	tests := []struct {
		kind      string
		disk      string
		part1     string
		byIDStart string
	}{
		{kind: SATA, disk: "sda", part1: "sda1", byIDStart: "ata-NIXBOOK_SIM_HDD_"},
		{kind: NVMe, disk: "nvme0n1", part1: "nvme0n1p1", byIDStart: "nvme-NIXBOOK_SIM_NVME_"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			f := startFleet(t, Config{Hosts: 1, Overrides: &Overrides{All: HostOverride{DiskKind: tt.kind, DiskSize: "1GiB"}}})
			c, _ := dial(t, f, "ks1")
			defer c.Close()
			dev := "/dev/" + tt.disk
			run(t, c, "parted -s "+dev+" mklabel gpt mkpart ESP fat32 1MiB 100MiB mkpart nixos ext4 100MiB 100%")
			// No settle: the watcher alone must bring the nodes.
			eventually(t, 5*time.Second, "partition nodes", func() error {
				_, err := runErr(c, "test -b /dev/"+tt.part1+" && test -L /dev/disk/by-partlabel/nixos && test -L /dev/disk/by-id/"+tt.byIDStart+"*-part2")
				return err
			})
			part2 := strings.TrimSuffix(tt.part1, "1") + "2"
			run(t, c, "mkfs.ext4 -q -L nixos-root /dev/"+part2)
			eventually(t, 5*time.Second, "by-label link", func() error {
				out, err := runErr(c, "readlink -f /dev/disk/by-label/nixos-root")
				if err == nil && strings.TrimSpace(out) != "/dev/"+part2 {
					return fmt.Errorf("by-label/nixos-root -> %s", out)
				}
				return err
			})
			uuid := strings.TrimSpace(run(t, c, "blkid -s UUID -o value /dev/"+part2))
			run(t, c, "test -L /dev/disk/by-uuid/"+uuid)
			run(t, c, "mkdir -p /mnt && mount /dev/disk/by-label/nixos-root /mnt && touch /mnt/ok && umount /mnt")
			if out := run(t, c, "lsblk -ln -o NAME,TYPE,LABEL "+dev); !strings.Contains(out, part2+" part nixos-root") {
				t.Errorf("lsblk:\n%s", out)
			}

			run(t, c, "wipefs -q -a /dev/"+part2+" && udevadm settle")
			if out, err := runErr(c, "ls /dev/disk/by-label 2>/dev/null"); err == nil && strings.TrimSpace(out) != "" {
				t.Errorf("by-label after wipefs: %q", out)
			}
			run(t, c, "wipefs -q -a "+dev+" && udevadm settle")
			if out := run(t, c, "ls /dev"); strings.Contains(out, tt.part1) {
				t.Errorf("partition nodes after wiping the table:\n%s", out)
			}
			if out := run(t, c, "cat /proc/partitions"); strings.Contains(out, tt.part1) || !strings.Contains(out, tt.disk) {
				t.Errorf("/proc/partitions:\n%s", out)
			}
		})
	}
}

// TestDevIsFilledOnlyOnceTheHostsRootIsBuilt holds each boot's init before
// it builds anything, while /proc/PID/root is still the machine's root: a
// /dev sync then (the watcher's, every 200 ms) must write nothing, and the
// host must come up with its disks.
func TestDevIsFilledOnlyOnceTheHostsRootIsBuilt(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var early []string // what went wrong while an init was held
	var devErrs []string
	hooks := &testHooks{initStarted: func(h *Host, pid int) {
		note := func(format string, args ...any) {
			mu.Lock()
			early = append(early, fmt.Sprintf(format, args...))
			mu.Unlock()
		}
		if err := devtree.RootBuilt(pid); err == nil {
			note("the root of init %d counts as built before the init got its config", pid)
		}
		if err := h.devs.Sync(context.Background(), true); err != nil {
			note("sync before the root is built: %v", err)
		}
		// Let the watcher tick meanwhile.
		time.Sleep(600 * time.Millisecond)
	}}
	// A node of another fleet in the machine's /dev is not this one's.
	identity := func(p string) string {
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return ""
		}
		return fmt.Sprintf("%d %d.%d %d", st.Ino, st.Ctim.Sec, st.Ctim.Nsec, st.Rdev)
	}
	sdaBefore := identity("/dev/sda")
	f := startFleet(t, Config{Hosts: 1, hooks: hooks, Logf: func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); strings.Contains(msg, "/dev") {
			mu.Lock()
			devErrs = append(devErrs, msg)
			mu.Unlock()
		}
	}})
	h, _ := f.Host("ks1")
	d := h.Disks()[0]
	maj, min, err := devtree.DevNum(filepath.Join("/sys/block", filepath.Base(d.Loop)))
	if err != nil {
		t.Fatal(err)
	}
	// What a sync into the machine's /dev would have made there.
	machineLeft := func() []string {
		var left []string
		var st unix.Stat_t
		if unix.Lstat("/dev/sda", &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == unix.Mkdev(maj, min) && identity("/dev/sda") != sdaBefore {
			left = append(left, "/dev/sda")
		}
		if _, err := os.Lstat("/dev/disk/by-id/" + d.ByID()); err == nil {
			left = append(left, "/dev/disk/by-id/"+d.ByID())
		}
		return left
	}
	t.Cleanup(func() {
		for _, p := range machineLeft() {
			_ = os.Remove(p)
		}
	})

	boot1 := h.BootID()
	if err := f.Reboot(context.Background(), "ks1", ModeRescue); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "ks1 back", func() error {
		if h.BootID() == boot1 {
			return errors.New("same boot id")
		}
		return sshWithin(f, "ks1", 5*time.Second)
	})
	c, _ := dial(t, f, "ks1")
	defer c.Close()
	for _, cmd := range []string{"test -b /dev/sda", "test -e /sys/block/sda/dev", "test \"$(lsblk -dn -o NAME /dev/sda)\" = sda", "test -L /dev/disk/by-id/" + d.ByID()} {
		if _, err := runErr(c, cmd); err != nil {
			t.Errorf("in the rebooted host, %s: %v", cmd, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range early {
		t.Error(e)
	}
	for _, e := range devErrs {
		t.Errorf("logged: %s", e)
	}
	if left := machineLeft(); len(left) > 0 {
		t.Errorf("the host's disk showed up in the machine's /dev: %v", left)
	}
}

func TestRebootChangesBootIDAndRescueHostKey(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 1})
	h, _ := f.Host("ks1")
	c, key1 := dial(t, f, "ks1")
	boot1 := strings.TrimSpace(run(t, c, "cat /proc/sys/kernel/random/boot_id"))
	run(t, c, "echo gone-after-reboot > /root/note; mkdir -p /mnt/x && mount -t tmpfs tmpfs /mnt/x")
	run(t, c, "setsid sleep 1000 </dev/null >/dev/null 2>&1 &")
	_, _ = runErr(c, "reboot")
	c.Close()

	eventually(t, 20*time.Second, "ks1 back with a new boot id", func() error {
		if h.BootID() == boot1 {
			return fmt.Errorf("same boot id")
		}
		return sshWithin(f, "ks1", 5*time.Second)
	})
	c, key2 := dial(t, f, "ks1")
	defer c.Close()
	boot2 := strings.TrimSpace(run(t, c, "cat /proc/sys/kernel/random/boot_id"))
	if boot2 == boot1 || boot2 != h.BootID() {
		t.Errorf("boot id %s after reboot, was %s, the fleet says %s", boot2, boot1, h.BootID())
	}
	if bytes.Equal(key1.Marshal(), key2.Marshal()) {
		t.Errorf("the rescue kept its host key across a reboot")
	}
	if h.Mode() != ModeRescue {
		t.Errorf("mode %s after reboot, want rescue", h.Mode())
	}
	for _, cmd := range []string{"test ! -e /root/note", "! mountpoint -q /mnt/x", "! pgrep -x sleep"} {
		if _, err := runErr(c, cmd); err != nil {
			t.Errorf("after reboot, %s: %v", cmd, err)
		}
	}
}

func TestKexecKeepsTheKeysAndBootsTheInstaller(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 1})
	h, _ := f.Host("ks1")
	c, key1 := dial(t, f, "ks1")
	boot1 := h.BootID()
	if _, err := runErr(c, "kexec -e"); err == nil {
		t.Errorf("kexec -e with nothing loaded succeeded")
	}
	run(t, c, "kexec -l /tmp/bzImage --initrd=/tmp/initrd --command-line=init=/nix/store/x/init")
	_, _ = runErr(c, "kexec -e")
	c.Close()
	eventually(t, 20*time.Second, "installer up", func() error {
		if h.Mode() != ModeInstaller || h.BootID() == boot1 {
			return fmt.Errorf("mode %s", h.Mode())
		}
		return sshWithin(f, "ks1", 5*time.Second)
	})
	c, key2 := dial(t, f, "ks1")
	defer c.Close()
	if !bytes.Equal(key1.Marshal(), key2.Marshal()) {
		t.Errorf("kexec changed the host key")
	}
	if out := run(t, c, ". /etc/os-release && echo $ID $VARIANT_ID; hostname"); out != "nixos installer\nnixos-installer\n" {
		t.Errorf("installer identity: %q", out)
	}
	// The payload's kexec/run asks for the installer in one go.
	boot2 := h.BootID()
	_, _ = runErr(c, "kexec --nixbook-sim-installer")
	eventually(t, 20*time.Second, "installer again", func() error {
		if h.BootID() == boot2 {
			return fmt.Errorf("not rebooted")
		}
		return sshWithin(f, "ks1", 5*time.Second)
	})
}

// installNixOS puts a minimal installed NixOS on the host's sda, as the
// payload's nixos-install would leave it, configured for nic.
func installNixOS(t *testing.T, f *Fleet, c *ssh.Client, host, nic string) {
	t.Helper()
	installNixOSWith(t, f, c, host, nic, f.Gateway6().String())
}

// installNixOSWith is installNixOS with the IPv6 gateway gw6.
func installNixOSWith(t *testing.T, f *Fleet, c *ssh.Client, host, nic, gw6 string) {
	t.Helper()
	h, _ := f.Host(host)
	config := fmt.Sprintf(`{ config, lib, pkgs, ... }:
{
  fileSystems."/" = { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; };
  boot.loader.grub.enable = true;
  boot.loader.grub.devices = [ %q ];
  networking.hostName = "web-%s";
  networking.useDHCP = false;
  networking.interfaces.%s.ipv4.addresses = [ { address = %q; prefixLength = 24; } ];
  networking.interfaces.%s.ipv6.addresses = [ { address = %q; prefixLength = 64; } ];
  networking.defaultGateway = { address = %q; interface = %q; };
  networking.defaultGateway6 = { address = %q; interface = %q; };
  services.openssh.enable = true;
  users.users.root.openssh.authorizedKeys.keys = [ %q ];
  system.stateVersion = "24.05";
}
`, h.Disks()[0].ByIDPath(), host, nic, h.IPv4().Addr(), nic, h.IPv6().Addr(), f.Gateway4(), nic, gw6, nic, f.ClientPublicKey())
	script := `set -e
parted -s /dev/sda mklabel msdos mkpart primary ext4 1MiB 100%
udevadm settle
mkfs.ext4 -q -L nixos /dev/sda1
udevadm settle
mount /dev/disk/by-label/nixos /mnt
mkdir -p /mnt/etc/nixos /mnt/etc/ssh /mnt/boot/grub /mnt/nix/var/nix/profiles /mnt/nix/store/abc-nixos-system/sw/bin
printf '#!/bin/sh\necho 24.05.test\n' > /mnt/nix/store/abc-nixos-system/sw/bin/nixos-version
chmod +x /mnt/nix/store/abc-nixos-system/sw/bin/nixos-version
ln -s /nix/store/abc-nixos-system /mnt/nix/var/nix/profiles/system-1-link
ln -s system-1-link /mnt/nix/var/nix/profiles/system
cat > /mnt/etc/nixos/configuration.nix
printf 'NAME=NixOS\nID=nixos\nVERSION_ID="24.05"\nPRETTY_NAME="NixOS 24.05 (Uakari)"\n' > /mnt/etc/os-release
ssh-keygen -q -t ed25519 -N "" -C root@installed -f /mnt/etc/ssh/ssh_host_ed25519_key
echo ` + h.Disks()[0].ByIDPath() + ` > /mnt/boot/grub/nixbook-sim-devices
echo kernel > /mnt/nix/store/abc-nixos-system/kernel
echo initrd > /mnt/nix/store/abc-nixos-system/initrd
printf 'menuentry "NixOS" {\n  linux ($drive1)/nix/store/abc-nixos-system/kernel\n  initrd ($drive1)/nix/store/abc-nixos-system/initrd\n}\n' > /mnt/boot/grub/grub.cfg
umount /mnt
`
	runScript(t, c, script, config)
}

// runScript runs a shell script on the host with stdin as its input.
func runScript(t *testing.T, c *ssh.Client, script, stdin string) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stderr bytes.Buffer
	s.Stdin, s.Stderr = strings.NewReader(stdin), &stderr
	if err := s.Run("sh -c '" + strings.ReplaceAll(script, "'", `'\''`) + "'"); err != nil {
		t.Fatalf("install: %v: %s", err, stderr.String())
	}
}

func TestDiskBootComesUpOnlyWithTheRightNIC(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	heavytest.Require(t, "nix-bin, installed with apt")
	if err := nixeval.EnsureNix(context.Background()); err != nil {
		t.Skipf("disk mode evaluates with Nix: %v", err)
	}
	f := startFleet(t, Config{Hosts: 2, Overrides: &Overrides{Hosts: map[string]HostOverride{"ks2": {NIC: "enp3s0"}}}})
	for _, host := range []string{"ks1", "ks2"} {
		c, _ := dial(t, f, host)
		// Both configured for eth0: right for ks1, wrong for ks2 whose NIC
		// the installed kernel names enp3s0.
		installNixOS(t, f, c, host, "eth0")
		c.Close()
		if err := f.Reboot(context.Background(), host, ModeDisk); err != nil {
			t.Fatal(err)
		}
	}
	h1, _ := f.Host("ks1")
	h2, _ := f.Host("ks2")
	eventually(t, 60*time.Second, "ks1 boots its disk", func() error {
		if h1.Mode() != ModeDisk {
			return fmt.Errorf("mode %s", h1.Mode())
		}
		return sshWithin(f, "ks1", 5*time.Second)
	})
	c, key := dial(t, f, "ks1")
	defer c.Close()
	if out := run(t, c, ". /etc/os-release && echo $ID $VERSION_ID; hostname; cat /etc/nixos/configuration.nix | grep -c web-ks1; nixos-version; readlink /run/current-system"); out != "nixos 24.05\nweb-ks1\n1\n24.05.test\n/nix/store/abc-nixos-system\n" {
		t.Errorf("disk boot identity: %q", out)
	}
	installedKey := strings.Fields(run(t, c, "cat /etc/ssh/ssh_host_ed25519_key.pub"))[1]
	if got := strings.Fields(string(ssh.MarshalAuthorizedKey(key)))[1]; got != installedKey {
		t.Errorf("disk boot serves host key %s, the installed system holds %s", got, installedKey)
	}

	eventually(t, 60*time.Second, "ks2 boots its disk", func() error {
		if h2.Mode() != ModeDisk || !strings.Contains(h2.Status(context.Background()).Why, "enp3s0") {
			return fmt.Errorf("mode %s, why %q", h2.Mode(), h2.Status(context.Background()).Why)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := f.WaitSSH(ctx, "ks2"); err == nil {
		t.Fatalf("ks2 answers SSH with a configuration for eth0 on enp3s0")
	}
	st := h2.Status(context.Background())
	if st.SSH || !strings.Contains(st.Why, "the server's NIC will be named enp3s0") {
		t.Errorf("ks2 status: %+v", st)
	}
}

func TestDownLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "fleet")
	ctx := context.Background()
	f, err := Up(ctx, Config{Dir: dir, Hosts: 2, BootDelay: 100 * time.Millisecond, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WaitSSH(ctx); err != nil {
		t.Fatal(err)
	}
	var pids []int
	var images []string
	for _, h := range f.Hosts() {
		pids = append(pids, h.pid())
		for _, d := range h.Disks() {
			images = append(images, d.Image)
		}
	}
	id := f.ID()
	if err := f.Down(ctx); err != nil {
		t.Fatalf("down: %v", err)
	}
	if err := f.Down(ctx); err != nil {
		t.Fatalf("second down: %v", err)
	}
	assertNothingLeft(t, id, dir, pids, images)
}

func TestUpClearsWhatACrashedFleetLeft(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "fleet")
	ctx := context.Background()
	crashed, err := Up(ctx, Config{Dir: dir, Hosts: 1, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	// The crashed fleet's process is gone as far as the new one knows: only
	// its record is left to go by.
	crashed.cancel()
	f, err := Up(ctx, Config{Dir: dir, Hosts: 2, Logf: t.Logf})
	if err != nil {
		t.Fatalf("up over a crashed fleet: %v", err)
	}
	if err := f.WaitSSH(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Down(ctx); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, f.ID(), dir, nil, nil)
}

func TestReaperCleansUpAfterAKilledFleetProcess(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "fleet")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 64)
	n, _ := out.Read(line)
	id := strings.TrimSpace(string(line[:n]))
	if id == "" {
		_ = cmd.Process.Kill()
		t.Fatal("the fleet process did not come up")
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err != nil {
		t.Fatalf("no state record while up: %v", err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	eventually(t, 20*time.Second, "reaper cleans up", func() error {
		if _, err := os.Stat(dir); err == nil {
			return fmt.Errorf("%s still exists", dir)
		}
		return nil
	})
	assertNothingLeft(t, id, dir, nil, nil)
}

func assertNothingLeft(t *testing.T, id, dir string, pids []int, images []string) {
	t.Helper()
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), id) {
		t.Errorf("network namespaces left: %s", out)
	}
	if out, _ := exec.Command("ip", "-o", "link").Output(); strings.Contains(string(out), "nbs"+id) {
		t.Errorf("links left: %s", out)
	}
	if out, _ := exec.Command("losetup", "-a").Output(); strings.Contains(string(out), dir) {
		t.Errorf("loop devices left: %s", out)
	}
	if data, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(data), dir) {
		t.Errorf("mounts left under %s", dir)
	}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("process %d left", pid)
		}
	}
	for _, img := range images {
		if _, err := os.Stat(img); err == nil {
			t.Errorf("disk image %s left", img)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		var left []string
		_ = filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error {
			left = append(left, p)
			return nil
		})
		sort.Strings(left)
		t.Errorf("fleet directory left: %v", left)
	}
	if _, err := os.Stat("/run/nixbook-sim/" + id); err == nil {
		t.Errorf("socket directory left")
	}
}

// TestALoopDeviceElsewhereDoesNotReprobeTheDisks binds a loop device on the
// machine, as another fleet or test does: the host's free loop nodes follow
// at once, while its disks, unchanged, are not probed again. A write to its
// disk still is seen without a settle.
func TestALoopDeviceElsewhereDoesNotReprobeTheDisks(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 1, Overrides: &Overrides{All: HostOverride{DiskSize: "1GiB"}}})
	h, _ := f.Host("ks1")
	c, _ := dial(t, f, "ks1")
	defer c.Close()
	run(t, c, "parted -s /dev/sda mklabel gpt mkpart nixos ext4 1MiB 100% && mkfs.ext4 -q -L before /dev/sda1 && udevadm settle")
	freeLoops := func() string { return run(t, c, "ls /dev | grep '^loop[0-9]' | sort -V | tr '\\n' ' '") }
	before := freeLoops()
	scans := h.devs.Scans()

	img := filepath.Join(t.TempDir(), "elsewhere.img")
	if err := devtree.CreateImage(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	loop, err := devtree.AttachLoop(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = exec.Command("losetup", "-d", loop).Run() }()
	eventually(t, 5*time.Second, "the host's free loop devices to follow the machine's", func() error {
		if now := freeLoops(); now == before || strings.Contains(" "+now, " "+filepath.Base(loop)+" ") {
			return fmt.Errorf("loop nodes %q, %s bound on the machine", now, loop)
		}
		return nil
	})
	if n := h.devs.Scans(); n != scans {
		t.Errorf("the disks were probed %d times for a loop device elsewhere", n-scans)
	}
	run(t, c, "test -L /dev/disk/by-label/before && test -b /dev/sda1")

	run(t, c, "mkfs.ext4 -q -F -L after /dev/sda1")
	eventually(t, 5*time.Second, "by-label/after", func() error {
		_, err := runErr(c, "test -L /dev/disk/by-label/after && test ! -e /dev/disk/by-label/before")
		return err
	})
}

// TestSettleProbesOnlyAfterAWrite: like udev, the simulator learns of a
// write to a disk from its node, so a settle after one shows its result at
// once, and a settle after none, or after writes into a mounted file
// system, probes nothing again.
func TestSettleProbesOnlyAfterAWrite(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Hosts: 1, Overrides: &Overrides{All: HostOverride{DiskSize: "1GiB"}}})
	h, _ := f.Host("ks1")
	if f.nodes == nil {
		t.Skip("no inotify on this machine")
	}
	c, _ := dial(t, f, "ks1")
	defer c.Close()
	run(t, c, "parted -s /dev/sda mklabel gpt mkpart nixos ext4 1MiB 100% && mkfs.ext4 -q -L first /dev/sda1 && udevadm settle")
	run(t, c, "test -L /dev/disk/by-label/first")

	scans := h.devs.Scans()
	run(t, c, "udevadm settle && udevadm settle")
	run(t, c, "mkdir -p /mnt && mount /dev/sda1 /mnt && dd if=/dev/urandom of=/mnt/data bs=1M count=4 status=none && sync && umount /mnt && udevadm settle")
	if n := h.devs.Scans(); n != scans {
		t.Errorf("%d probes for settles with no write to a disk node", n-scans)
	}

	// Each write is seen by the settle right after it, with no wait.
	for _, label := range []string{"second", "third"} {
		run(t, c, "e2label /dev/disk/by-id/*-part1 "+label+" && udevadm settle && test -L /dev/disk/by-label/"+label)
	}
	run(t, c, "wipefs -q -a /dev/sda1 && udevadm settle && test ! -e /dev/disk/by-label/third")
}
