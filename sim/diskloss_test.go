package sim

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/sim/nixeval"
)

// A host that loses its first disk after the install boots from the other
// one only if that disk carries a GRUB and, beside it, a /boot with the
// kernel GRUB's menu loads. The root lives on the second disk in every
// case, so the boot loader alone decides.
func TestALostDiskTakesItsBootAlong(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	heavytest.Require(t, "nix-bin, installed with apt")
	if err := nixeval.EnsureNix(context.Background()); err != nil {
		t.Skipf("disk mode evaluates with Nix: %v", err)
	}
	lose := HostOverride{DiskCount: 2, DiskSize: "1GiB", LoseDisk: "sda"}
	f := startFleet(t, Config{Hosts: 3, Payload: true, CalmAPI: true, Overrides: &Overrides{Hosts: map[string]HostOverride{
		"ks1": lose, "ks2": lose, "ks3": lose,
	}}})
	tests := []struct {
		host  string
		boot2 string // what the second disk's /boot holds
		why   string // "" when the host comes up
	}{
		{host: "ks1", boot2: "nothing", why: "no boot loader was installed on the server's disks"},
		{host: "ks2", boot2: "grub"},
		{host: "ks3", boot2: "grub without kernel", why: "GRUB's menu on /dev/sda2 loads /kernels/k-bzImage and /kernels/k-initrd, which that file system lacks"},
	}
	for _, tt := range tests {
		if err := f.Reboot(context.Background(), tt.host, ModeInstaller); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			h, _ := f.Host(tt.host)
			installFromTheInstaller(t, f, tt.host, func(c *ssh.Client) { installOnSecondDisk(t, f, c, tt.host, tt.boot2) })
			eventually(t, 60*time.Second, "the disk boot", func() error {
				if h.Mode() != ModeDisk || h.Status(context.Background()).LostDisk != "sda" {
					return fmt.Errorf("mode %s", h.Mode())
				}
				return nil
			})
			if tt.why == "" {
				eventually(t, 30*time.Second, "SSH", func() error { return sshWithin(f, tt.host, 5*time.Second) })
				c, _ := dial(t, f, tt.host)
				defer c.Close()
				// One disk left, named sda now; /boot is the survivor's.
				if got := run(t, c, "ls /sys/block | grep -c sd; hostname; ls /boot/kernels"); got != "1\nweb-"+tt.host+"\nk-bzImage\nk-initrd\n" {
					t.Errorf("the booted system: %q", got)
				}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if err := f.WaitSSH(ctx, tt.host); err == nil {
				t.Fatalf("%s answers SSH without a boot loader on its remaining disk", tt.host)
			}
			if st := h.Status(context.Background()); !strings.Contains(st.Why, tt.why) {
				t.Errorf("why = %q, want %q", st.Why, tt.why)
			}
		})
	}
}

// installFromTheInstaller waits for host to answer in the installer, lays
// out a system there with install, and reboots the host into its disks.
func installFromTheInstaller(t *testing.T, f *Fleet, host string, install func(c *ssh.Client)) {
	t.Helper()
	h, _ := f.Host(host)
	eventually(t, 30*time.Second, "the installer", func() error {
		if h.Mode() != ModeInstaller {
			return fmt.Errorf("mode %s", h.Mode())
		}
		return sshWithin(f, host, 5*time.Second)
	})
	c, _ := dial(t, f, host)
	install(c)
	c.Close()
	if err := f.Reboot(context.Background(), host, ModeDisk); err != nil {
		t.Fatal(err)
	}
}

// installOnSecondDisk lays out a NixOS with its root on sdb and a /boot on
// sda (GRUB's menu, its kernel, the record of GRUB on both disks), and on
// sdb a second /boot holding what boot2 says: nothing, "grub" (a GRUB
// reading it, with its kernel) or "grub without kernel".
func installOnSecondDisk(t *testing.T, f *Fleet, c *ssh.Client, host, boot2 string) {
	t.Helper()
	h, _ := f.Host(host)
	a, b := h.Disks()[0].ByIDPath(), h.Disks()[1].ByIDPath()
	config := fmt.Sprintf(`{ ... }:
{
  fileSystems."/" = { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; };
  fileSystems."/boot" = { device = "/dev/disk/by-label/boot"; fsType = "ext4"; options = [ "nofail" ]; };
  fileSystems."/boot-2" = { device = "/dev/disk/by-label/boot-2"; fsType = "ext4"; options = [ "nofail" ]; };
  boot.loader.grub.mirroredBoots = [ { devices = [ %q ]; path = "/boot"; } { devices = [ %q ]; path = "/boot-2"; } ];
  networking.hostName = "web-%s";
  networking.useDHCP = false;
  networking.interfaces.eth0.ipv4.addresses = [ { address = %q; prefixLength = 24; } ];
  networking.defaultGateway = { address = %q; interface = "eth0"; };
  services.openssh.enable = true;
  users.users.root.openssh.authorizedKeys.keys = [ %q ];
  system.stateVersion = "24.05";
}
`, a, b, host, h.IPv4().Addr(), f.Gateway4(), f.ClientPublicKey())
	menu := `menuentry "NixOS" {\n  linux ($drive1)/kernels/k-bzImage\n  initrd ($drive1)/kernels/k-initrd\n}\n`
	script := `set -e
parted -s /dev/sda mklabel msdos mkpart primary ext4 1MiB 100MiB
parted -s /dev/sdb mklabel msdos mkpart primary ext4 1MiB 600MiB mkpart primary ext4 600MiB 700MiB
udevadm settle
mkfs.ext4 -q -L boot /dev/sda1
mkfs.ext4 -q -L nixos /dev/sdb1
mkfs.ext4 -q -L boot-2 /dev/sdb2
udevadm settle
mount /dev/sdb1 /mnt
mkdir -p /mnt/boot /mnt/boot-2 /mnt/etc/nixos /mnt/nix/var/nix/profiles /mnt/nix/store/abc-nixos-system/sw/bin
mount /dev/sda1 /mnt/boot
mount /dev/sdb2 /mnt/boot-2
ln -s /nix/store/abc-nixos-system /mnt/nix/var/nix/profiles/system
cat > /mnt/etc/nixos/configuration.nix
printf 'NAME=NixOS\nID=nixos\n' > /mnt/etc/os-release
mkdir -p /mnt/boot/grub /mnt/boot/kernels
printf '` + menu + `' > /mnt/boot/grub/grub.cfg
echo kernel > /mnt/boot/kernels/k-bzImage
echo initrd > /mnt/boot/kernels/k-initrd
printf '%s\n' ` + a + ` ` + b + ` > /mnt/boot/grub/nixbook-sim-devices
case "` + boot2 + `" in
grub*)
    mkdir -p /mnt/boot-2/grub
    printf '` + menu + `' > /mnt/boot-2/grub/grub.cfg
    echo ` + b + ` > /mnt/boot-2/grub/nixbook-sim-devices ;;
esac
if [ "` + boot2 + `" = grub ]; then
    mkdir -p /mnt/boot-2/kernels
    echo kernel > /mnt/boot-2/kernels/k-bzImage
    echo initrd > /mnt/boot-2/kernels/k-initrd
fi
umount /mnt/boot /mnt/boot-2 /mnt
`
	runScript(t, c, script, config)
}

// A server's disks behind a RAID controller (megaraid_sas) show its driver
// in sysfs, as on real hardware, and a system whose initrd lacks it does
// not come up; the same configuration on the stock SATA controller does.
func TestDiskBootNeedsTheControllersDriver(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	heavytest.Require(t, "nix-bin, installed with apt")
	if err := nixeval.EnsureNix(context.Background()); err != nil {
		t.Skipf("disk mode evaluates with Nix: %v", err)
	}
	f := startFleet(t, Config{Hosts: 2, Overrides: &Overrides{Hosts: map[string]HostOverride{
		"ks1": {Controller: "megaraid_sas"},
	}}})
	for host, driver := range map[string]string{"ks1": "megaraid_sas", "ks2": "ahci"} {
		c, _ := dial(t, f, host)
		if got := run(t, c, "readlink /sys/block/sda/device/driver"); got != "/sys/bus/pci/drivers/"+driver+"\n" {
			t.Errorf("%s: the disk's driver link: %q", host, got)
		}
		installNixOS(t, f, c, host, "eth0")
		c.Close()
		if err := f.Reboot(context.Background(), host, ModeDisk); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, "ks2 boots its disk", func() error { return sshWithin(f, "ks2", 5*time.Second) })
	h1, _ := f.Host("ks1")
	eventually(t, 60*time.Second, "ks1 boots its disk", func() error {
		if h1.Mode() != ModeDisk || h1.Status(context.Background()).Why == "" {
			return fmt.Errorf("mode %s", h1.Mode())
		}
		return nil
	})
	st := h1.Status(context.Background())
	if st.SSH || !strings.Contains(st.Why, "the initrd has no driver for the disks' controller (megaraid_sas)") {
		t.Errorf("ks1 status: %+v", st)
	}
}

// Disk names that move between boots (reorder_disks: the installer sees
// sda and sdb swapped): a root named by the installer's /dev/sda1 is the
// other disk's partition at the disk boot, and the system does not come
// up; the same root named by its disk's id does.
func TestARootNamedByAMovedNameDoesNotBoot(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	heavytest.Require(t, "nix-bin, installed with apt")
	if err := nixeval.EnsureNix(context.Background()); err != nil {
		t.Skipf("disk mode evaluates with Nix: %v", err)
	}
	yes := true
	reorder := HostOverride{DiskCount: 2, DiskSize: "1GiB", Reorder: &yes}
	f := startFleet(t, Config{Hosts: 2, Payload: true, CalmAPI: true, Overrides: &Overrides{Hosts: map[string]HostOverride{
		"ks1": reorder, "ks2": reorder,
	}}})
	tests := []struct {
		host string
		root func(h *Host) string // fileSystems."/".device, as the installer names the root
		why  string               // "" when the host comes up
	}{
		{"ks1", func(*Host) string { return "/dev/sda1" }, `fileSystems."/" is /dev/sda1, which in this boot is another file system`},
		// The installer's sda is the disk made second.
		{"ks2", func(h *Host) string { return h.Disks()[1].ByIDPath() + "-part1" }, ""},
	}
	for _, tt := range tests {
		if err := f.Reboot(context.Background(), tt.host, ModeInstaller); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			h, _ := f.Host(tt.host)
			installFromTheInstaller(t, f, tt.host, func(c *ssh.Client) {
				if got := run(t, c, "readlink /dev/disk/by-id/"+h.Disks()[1].ByID()); got != "../../sda\n" {
					t.Fatalf("the installer's sda is not the disk made second: %q", got)
				}
				installOnFirstPartition(t, f, c, tt.host, tt.root(h))
			})
			if tt.why == "" {
				eventually(t, 60*time.Second, "SSH", func() error { return sshWithin(f, tt.host, 5*time.Second) })
				return
			}
			eventually(t, 60*time.Second, "the disk boot", func() error {
				if h.Mode() != ModeDisk || !strings.Contains(h.Status(context.Background()).Why, tt.why) {
					return fmt.Errorf("mode %s: %s", h.Mode(), h.Status(context.Background()).Why)
				}
				return nil
			})
			if err := sshWithin(f, tt.host, 2*time.Second); err == nil {
				t.Errorf("%s answers SSH with its root named by a name that moved", tt.host)
			}
		})
	}
}

// installOnFirstPartition lays out, from the installer, a NixOS whose root
// and /boot are the first partition of the installer's sda, and an empty
// file system on the first partition of its sdb; GRUB goes on both disks.
func installOnFirstPartition(t *testing.T, f *Fleet, c *ssh.Client, host, root string) {
	t.Helper()
	h, _ := f.Host(host)
	config := fmt.Sprintf(`{ ... }:
{
  fileSystems."/" = { device = %q; fsType = "ext4"; };
  boot.loader.grub.devices = [ %q %q ];
  networking.hostName = "web-%s";
  networking.useDHCP = false;
  networking.interfaces.eth0.ipv4.addresses = [ { address = %q; prefixLength = 24; } ];
  networking.defaultGateway = { address = %q; interface = "eth0"; };
  services.openssh.enable = true;
  users.users.root.openssh.authorizedKeys.keys = [ %q ];
  system.stateVersion = "24.05";
}
`, root, h.Disks()[0].ByIDPath(), h.Disks()[1].ByIDPath(), host, h.IPv4().Addr(), f.Gateway4(), f.ClientPublicKey())
	script := `set -e
for d in sda sdb; do parted -s /dev/$d mklabel msdos mkpart primary ext4 1MiB 600MiB; done
udevadm settle
mkfs.ext4 -q /dev/sda1
mkfs.ext4 -q /dev/sdb1
mount /dev/sda1 /mnt
mkdir -p /mnt/etc/nixos /mnt/nix/var/nix/profiles /mnt/nix/store/abc-nixos-system/sw/bin /mnt/boot/grub /mnt/boot/kernels
ln -s /nix/store/abc-nixos-system /mnt/nix/var/nix/profiles/system
cat > /mnt/etc/nixos/configuration.nix
printf 'NAME=NixOS\nID=nixos\n' > /mnt/etc/os-release
printf 'menuentry "NixOS" {\n  linux /boot/kernels/k-bzImage\n  initrd /boot/kernels/k-initrd\n}\n' > /mnt/boot/grub/grub.cfg
echo kernel > /mnt/boot/kernels/k-bzImage
echo initrd > /mnt/boot/kernels/k-initrd
printf '%s\n' ` + h.Disks()[0].ByIDPath() + ` ` + h.Disks()[1].ByIDPath() + ` > /mnt/boot/grub/nixbook-sim-devices
umount /mnt
`
	runScript(t, c, script, config)
}
