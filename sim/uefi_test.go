package sim

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/sim/internal/diskboot"
	"github.com/nixbook/nixbook/sim/nixeval"
	"github.com/nixbook/nixbook/sim/ovhapi"
)

// A UEFI host, rehearsed end to end with the payload's installer: the
// firmware shows in rescue, installer and installed system (and not on a
// BIOS host); GRUB's EFI image lands on the EFI system partition of each
// disk of a mirrored boot; the disk boot starts only a loader the ESPs
// hold at the path the API's efiBootloaderPath names, so OVH's stale
// Debian path leaves the server in the UEFI shell with the reason in its
// status; an install that writes the firmware's boot order is flagged.
func TestUEFIHostBootsWhatItsESPsHold(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	heavytest.Require(t, "nix-bin and mtools, installed with apt")
	if err := requireTools("mkfs.vfat", "mdir"); err != nil {
		t.Skip(err)
	}
	if err := nixeval.EnsureNix(context.Background()); err != nil {
		t.Skipf("disk mode evaluates with Nix: %v", err)
	}
	f := startFleet(t, Config{Hosts: 3, CalmAPI: true, Payload: true,
		Timings: ovhapi.Timings{Init: 100 * time.Millisecond, Todo: 100 * time.Millisecond, Doing: 200 * time.Millisecond},
		Overrides: &Overrides{Hosts: map[string]HostOverride{
			"ks1": {Firmware: FirmwareUEFI, DiskCount: 2, DiskSize: "2GiB"},
			"ks2": {Firmware: FirmwareUEFI, DiskSize: "2GiB"},
		}}})
	ctx := context.Background()

	// The firmware as the rescue shows it.
	for _, name := range []string{"ks1", "ks3"} {
		c, _ := dial(t, f, name)
		efi, _ := runErr(c, "test -d /sys/firmware/efi && echo uefi || echo bios")
		nvram, err := runErr(c, "efibootmgr")
		c.Close()
		uefi := name == "ks1"
		if want := map[bool]string{true: "uefi\n", false: "bios\n"}[uefi]; efi != want {
			t.Errorf("%s's rescue boots in %q, want %q", name, efi, want)
		}
		if uefi && (err != nil || !strings.Contains(nvram, "BootOrder: 0000,0001") || !strings.Contains(nvram, "Boot0000* UEFI: PXE IPv4")) {
			t.Errorf("%s's efibootmgr: %v\n%s", name, err, nvram)
		}
		if !uefi && (err == nil || !strings.Contains(err.Error(), "EFI variables are not supported on this system.")) {
			t.Errorf("%s (BIOS) efibootmgr: %v %s", name, err, nvram)
		}
	}

	// ks1: an ESP on each disk, GRUB at the removable path of both
	// (mirroredBoots), the firmware's variables left alone. ks2: GRUB under
	// EFI/NixOS-boot with canTouchEfiVariables, which registers it with the
	// firmware ahead of the network boot.
	install := map[string]string{
		"ks1": `
  fileSystems."/boot" = { device = "/dev/disk/by-label/ESP"; fsType = "vfat"; };
  fileSystems."/boot-2" = { device = "/dev/disk/by-label/ESP2"; fsType = "vfat"; };
  boot.loader.grub = {
    efiSupport = true;
    efiInstallAsRemovable = true;
    mirroredBoots = [
      { devices = [ "nodev" ]; path = "/boot"; efiSysMountPoint = "/boot"; }
      { devices = [ "nodev" ]; path = "/boot-2"; efiSysMountPoint = "/boot-2"; }
    ];
  };
  boot.loader.efi.canTouchEfiVariables = false;`,
		"ks2": `
  fileSystems."/boot" = { device = "/dev/disk/by-label/ESP"; fsType = "vfat"; };
  boot.loader.grub = { efiSupport = true; device = "nodev"; };
  boot.loader.efi.canTouchEfiVariables = true;`,
	}
	for _, name := range []string{"ks1", "ks2"} {
		if err := f.Reboot(ctx, name, ModeInstaller); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"ks1", "ks2"} {
		h, _ := f.Host(name)
		eventually(t, 30*time.Second, name+" installer", func() error { return f.WaitSSH(ctx, name) })
		c, _ := dial(t, f, name)
		if got, err := runErr(c, "ls /sys/firmware/efi"); err != nil || !strings.Contains(got, "efivars") {
			t.Errorf("%s's installer has no efivars: %v %q", name, err, got)
		}
		layout := `set -e
parted -s /dev/sda mklabel gpt mkpart ESP fat32 1MiB 65MiB set 1 esp on mkpart root ext4 65MiB 100%
udevadm settle
mkfs.vfat -F 32 -n ESP /dev/sda1
mkfs.ext4 -q -L nixos /dev/sda2`
		if name == "ks1" {
			layout += `
parted -s /dev/sdb mklabel gpt mkpart ESP fat32 1MiB 65MiB set 1 esp on mkpart data ext4 65MiB 100%
udevadm settle
mkfs.vfat -F 32 -n ESP2 /dev/sdb1`
		}
		run(t, c, layout+`
udevadm settle
mount /dev/disk/by-label/nixos /mnt
nixos-generate-config --root /mnt`)
		// The kernel has no vfat: the ESPs stay unmounted and the installer
		// writes them through mtools.
		if _, err := runErr(c, "mkdir -p /mnt/boot && mount /dev/sda1 /mnt/boot"); err == nil {
			t.Log("this kernel mounts vfat: the ESP is mounted")
		}
		writeConfig(t, c, fmt.Sprintf(`{ config, lib, pkgs, ... }:
{
  imports = [ ./hardware-configuration.nix ];
  networking.hostName = %q;
  networking.useDHCP = false;
  networking.usePredictableInterfaceNames = false;
  networking.interfaces.eth0.ipv4.addresses = [ { address = %q; prefixLength = 24; } ];
  networking.defaultGateway = %q;
  services.openssh.enable = true;
  users.users.root.openssh.authorizedKeys.keys = [ %q ];
  system.stateVersion = "24.05";
%s
}
`, name, h.IPv4().Addr(), f.Gateway4(), f.ClientPublicKey(), install[name]))
		out, err := runErr(c, "nixos-install --root /mnt --no-root-passwd 2>&1")
		if err != nil || !strings.Contains(out, "installation finished") {
			t.Fatalf("%s: nixos-install: %v\n%s", name, err, out)
		}
		c.Close()
	}

	// What the firmware will find, read from the partitions themselves.
	h1, _ := f.Host("ks1")
	h2, _ := f.Host("ks2")
	files, esps, err := h1.diskBoot().ESPFiles(ctx)
	if err != nil || esps != 2 {
		t.Fatalf("ks1's ESPs: %d, %v", esps, err)
	}
	for _, part := range []string{"sda1", "sdb1"} {
		if !slices.Contains(files, diskboot.ESPFile{Part: part, Path: `\EFI\BOOT\BOOTX64.EFI`}) {
			t.Errorf("ks1: no GRUB at the removable path of %s: %v", part, files)
		}
	}
	files, _, _ = h2.diskBoot().ESPFiles(ctx)
	if !slices.Contains(files, diskboot.ESPFile{Part: "sda1", Path: `\EFI\NixOS-boot\grubx64.efi`}) {
		t.Errorf("ks2: no GRUB under EFI/NixOS-boot: %v", files)
	}

	// OVH's efiBootloaderPath still names Debian's loader: the UEFI shell.
	rebootThroughAPI(t, f, "ks1", "harddisk", "hd", "")
	eventually(t, 30*time.Second, "ks1 in the UEFI shell", func() error {
		if st := h1.Status(ctx); st.Mode != ModeIPXE || !strings.Contains(st.Why, "UEFI shell") {
			return fmt.Errorf("mode %s: %s", st.Mode, st.Why)
		}
		return nil
	})
	st := h1.Status(ctx)
	t.Logf("ks1 with the stale path: %s", st.Why)
	for _, want := range []string{`efiBootloaderPath \efi\debian\grubx64.efi names no file`, `sda1:\EFI\BOOT\BOOTX64.EFI`, `sdb1:\EFI\BOOT\BOOTX64.EFI`} {
		if !strings.Contains(st.Why, want) {
			t.Errorf("ks1's status does not say %q: %s", want, st.Why)
		}
	}
	if st.SSH {
		t.Error("ks1 answers SSH from the UEFI shell")
	}
	if api, _ := f.Emulator().Server(h1.Service()); api.Boot.Kernel != "efi-shell" {
		t.Errorf("the API says ks1 boots %+v", api.Boot)
	}

	// The path set to the removable loader (any case, as FAT matches): it boots.
	setEFIPath(t, f, "ks1", `\efi\boot\bootx64.efi`)
	rebootThroughAPI(t, f, "ks1", "harddisk", "hd", "")
	eventually(t, 60*time.Second, "ks1's installed system", func() error {
		if h1.Mode() != ModeDisk {
			return fmt.Errorf("mode %s: %s", h1.Mode(), h1.Status(ctx).Why)
		}
		return f.WaitSSH(ctx, "ks1")
	})
	c, _ := dial(t, f, "ks1")
	if got := run(t, c, "hostname; test -d /sys/firmware/efi/efivars && echo uefi; efibootmgr | grep BootOrder"); got != "ks1\nuefi\nBootOrder: 0000,0001\n" {
		t.Errorf("ks1's installed system: %q", got)
	}
	c.Close()

	// ks2 registered its loader with the firmware, ahead of the network.
	setEFIPath(t, f, "ks2", `\EFI\NixOS-boot\grubx64.efi`)
	rebootThroughAPI(t, f, "ks2", "harddisk", "hd", "")
	eventually(t, 60*time.Second, "ks2 flagged", func() error {
		if st := h2.Status(ctx); st.Mode != ModeDisk || !strings.Contains(st.Why, "BootOrder starts with Boot0002") {
			return fmt.Errorf("mode %s: %s", st.Mode, st.Why)
		}
		return nil
	})
	t.Logf("ks2: %s", h2.Status(ctx).Why)
	if st := h2.Status(ctx); !strings.Contains(st.Why, "efibootmgr -q -c -d /dev/sda -p 1") || !strings.Contains(st.Why, "canTouchEfiVariables = false") || st.SSH {
		t.Errorf("ks2's status: %+v", st)
	}
}

// A wrong layout or a stale path stops a UEFI host in the UEFI shell
// before anything boots, and its status says which.
func TestUEFIShellReasons(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	if err := requireTools("mkfs.vfat", "mmd", "mcopy"); err != nil {
		t.Skip(err)
	}
	f := startFleet(t, Config{Hosts: 1, CalmAPI: true, Overrides: &Overrides{Hosts: map[string]HostOverride{
		"ks1": {Firmware: FirmwareUEFI, DiskSize: "1GiB"},
	}}})
	ctx := context.Background()
	h, _ := f.Host("ks1")
	c, _ := dial(t, f, "ks1")
	defer c.Close()
	cases := []struct {
		name   string
		layout string
		path   string
		want   string // "" boots the disk
	}{
		{"no EFI system partition", "parted -s /dev/sda mklabel gpt", `\efi\debian\grubx64.efi`, "no EFI system partition on the disks"},
		{"FAT, but not of the ESP type", "parted -s /dev/sda mklabel gpt mkpart data fat32 1MiB 65MiB && udevadm settle && mkfs.vfat -F 32 /dev/sda1 && " + loaderAt(`EFI/BOOT/BOOTX64.EFI`), `\EFI\BOOT\BOOTX64.EFI`, "no EFI system partition on the disks"},
		{"OVH's stale Debian path", "parted -s /dev/sda mklabel gpt mkpart ESP fat32 1MiB 65MiB set 1 esp on && udevadm settle && mkfs.vfat -F 32 /dev/sda1 && " + loaderAt(`EFI/BOOT/BOOTX64.EFI`), `\efi\debian\grubx64.efi`, `efiBootloaderPath \efi\debian\grubx64.efi names no file on the EFI system partitions (sda1:\EFI\BOOT\BOOTX64.EFI)`},
		{"an empty path", "parted -s /dev/sda mklabel gpt mkpart ESP fat32 1MiB 65MiB set 1 esp on && udevadm settle && mkfs.vfat -F 32 /dev/sda1 && " + loaderAt(`EFI/BOOT/BOOTX64.EFI`), ``, "efiBootloaderPath is empty"},
		{"the loader, in another case and slashes", "parted -s /dev/sda mklabel gpt mkpart ESP fat32 1MiB 65MiB set 1 esp on && udevadm settle && mkfs.vfat -F 32 /dev/sda1 && " + loaderAt(`EFI/NixOS-boot/grubx64.efi`), `/efi/nixos-boot/GRUBX64.EFI`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run(t, c, "wipefs -a /dev/sda >/dev/null; ("+tc.layout+") >/dev/null && udevadm settle")
			err := h.efiBoot(ctx, tc.path)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("does not boot: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("efiBoot: %v, want %q", err, tc.want)
			}
		})
	}
}

// A UEFI server rented with OVH's Debian has it on GPT with an EFI system
// partition holding Debian's GRUB, which OVH's efiBootloaderPath names: it
// boots and answers SSH; with the ESP gone it stops in the UEFI shell.
func TestUEFIOldOSBootsThroughDebiansLoader(t *testing.T) {
	t.Parallel()
	if err := requireTools("mkfs.vfat", "mmd", "mcopy"); err != nil {
		t.Skip(err)
	}
	f := startFleet(t, Config{Hosts: 1, CalmAPI: true, Overrides: &Overrides{Hosts: map[string]HostOverride{
		"ks1": {Firmware: FirmwareUEFI, Mode: "disk", Data: "old-os", DiskSize: "2GiB"},
	}}})
	ctx := context.Background()
	h, _ := f.Host("ks1")
	if st := h.Status(ctx); st.Mode != ModeDisk || !st.SSH {
		t.Fatalf("the rented Debian does not answer: %+v", st)
	}
	c, _ := dial(t, f, "ks1")
	out := run(t, c, ". /etc/os-release; echo $ID; test -d /sys/firmware/efi && echo uefi; parted -s /dev/sda print | grep -E 'Partition Table|esp'")
	for _, want := range []string{"debian\nuefi\n", "Partition Table: gpt", "boot, esp"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	run(t, c, "wipefs -a /dev/sda1 >/dev/null")
	c.Close()
	rebootThroughAPI(t, f, "ks1", "harddisk", "hd", "")
	eventually(t, 30*time.Second, "the UEFI shell", func() error {
		if st := h.Status(ctx); st.Mode != ModeIPXE || !strings.Contains(st.Why, "no EFI system partition on the disks") {
			return fmt.Errorf("mode %s: %s", st.Mode, st.Why)
		}
		return nil
	})
}

// loaderAt is a shell command writing a loader at path (slashes, no
// leading one) onto /dev/sda1 with mtools.
func loaderAt(path string) string {
	parts := strings.Split(path, "/")
	var dirs []string
	for i := 1; i < len(parts); i++ {
		dirs = append(dirs, "::/"+strings.Join(parts[:i], "/"))
	}
	return fmt.Sprintf("mmd -i /dev/sda1 %s && echo loader > /tmp/loader && mcopy -i /dev/sda1 /tmp/loader ::/%s", strings.Join(dirs, " "), path)
}

// writeConfig writes /mnt/etc/nixos/configuration.nix on the host.
func writeConfig(t *testing.T, c *ssh.Client, config string) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Stdin = strings.NewReader(config)
	if out, err := s.CombinedOutput("cat > /mnt/etc/nixos/configuration.nix"); err != nil {
		t.Fatalf("write configuration.nix: %v: %s", err, out)
	}
}

// requireTools says which of the tools is missing.
func requireTools(tools ...string) error {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (scripts/deps.sh installs it)", tool)
		}
	}
	return nil
}

// setEFIPath sets the server's efiBootloaderPath through the API.
func setEFIPath(t *testing.T, f *Fleet, host, path string) {
	t.Helper()
	h, _ := f.Host(host)
	if err := apiClient(t, f).Put("/dedicated/server/"+h.Service(), map[string]any{"efiBootloaderPath": path}, nil); err != nil {
		t.Fatal(err)
	}
}
