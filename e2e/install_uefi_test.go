package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/simtest"
)

// uefiPlaybook reinstalls a two-disk UEFI server through nixbook's rescue,
// kexec, nixos_config and install modules. This kernel cannot mount vfat,
// which nixbook's partition module does and nixos_config checks, so
// commands lay out the disks as partition does for UEFI (an ESP on each
// disk), the ESPs' fileSystems are written as nixos-generate-config would
// have had they been mounted, and nixos_config renders configuration.nix
// beside the root, where it does not look for the ESPs' mounts: GRUB at
// the removable path of both through mirroredBoots, the firmware's
// variables left alone.
const uefiPlaybook = `
- name: Reinstall a UEFI server
  hosts: all
  tasks:
    - name: Boot the rescue system
      rescue:
        timeout: 2m
    - name: Say how it boots
      debug:
        msg: "{{ inventory_hostname }} boots with {{ facts.firmware }}"
    - name: Boot the NixOS installer
      kexec:
        url: "{{ kexec_url }}"
        sha256: "{{ kexec_sha256 }}"
        timeout: 2m
    - name: An EFI system partition on each disk, the root on the first
      shell:
        cmd: |
          set -e
          parted -s /dev/sda mklabel gpt mkpart ESP fat32 1MiB 129MiB set 1 esp on mkpart root ext4 129MiB 100%
          parted -s /dev/sdb mklabel gpt mkpart ESP fat32 1MiB 129MiB set 1 esp on mkpart data ext4 129MiB 100%
          udevadm settle
          mkfs.vfat -F 32 -n ESP /dev/sda1
          mkfs.vfat -F 32 -n ESP2 /dev/sdb1
          mkfs.ext4 -q -L nixos /dev/sda2
          udevadm settle
          mount /dev/disk/by-label/nixos /mnt
          nixos-generate-config --root /mnt
          mkdir -p /tmp/render/etc/nixos
          cat > /tmp/render/etc/nixos/esp.nix <<'NIX'
          { ... }: {
            fileSystems."/boot" = { device = "/dev/disk/by-label/ESP"; fsType = "vfat"; options = [ "fmask=0077" "dmask=0077" ]; };
            fileSystems."/boot-2" = { device = "/dev/disk/by-label/ESP2"; fsType = "vfat"; options = [ "fmask=0077" "dmask=0077" ]; };
          }
          NIX
    - name: Write configuration.nix for two ESPs
      nixos_config:
        root: /tmp/render
        require_mount: false
        ssh_keys: "{{ rescue_ssh_key }}"
        efi_mounts: [/boot, /boot-2]
        imports: [./esp.nix]
        state_version: "24.05"
    - name: Put it beside the root's hardware-configuration.nix
      shell:
        cmd: cd /tmp/render/etc/nixos && for f in *.nix; do [ "$f" = hardware-configuration.nix ] || cp "$f" /mnt/etc/nixos/; done
    - name: Install NixOS and boot it
      install:
        timeout: "{{ install_timeout | default('2m') }}"
`

// A two-disk UEFI server reinstalled through nixbook's rescue, kexec,
// nixos_config and install modules comes up on NixOS: the facts say UEFI, GRUB's image lands
// at the removable path of the ESP on each disk, and nixbook points OVH's
// efiBootloaderPath (Debian's loader when the server was rented) at it
// before the reboot, so the firmware finds it. The firmware's boot entries
// are as they were.
func TestInstallUEFIThroughTheESPs(t *testing.T) {
	f, playbook := startUEFI(t)
	h := f.Host("ks1")
	r := f.nixbook(t, playbook)
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.out)
	}
	if !strings.Contains(r.out, "ks1 boots with uefi") {
		t.Errorf("the facts do not say UEFI:\n%s", r.out)
	}
	if m := f.Mode("ks1"); m != sim.ModeDisk {
		t.Fatalf("ks1 is in %s mode: %+v", m, f.Status("ks1"))
	}
	if st, _ := f.Emulator.Server(h.Service); st.EFIBootloaderPath != `\EFI\BOOT\BOOTX64.EFI` {
		t.Errorf("efiBootloaderPath %q after the install", st.EFIBootloaderPath)
	}
	got := f.sh(t, "ks1", ". /etc/os-release; echo $ID; test -d /sys/firmware/efi/efivars && echo uefi; efibootmgr | grep BootOrder")
	if got != "nixos\nuefi\nBootOrder: 0000,0001\n" {
		t.Errorf("the installed system: %q", got)
	}
	cfg := f.sh(t, "ks1", "cat /etc/nixos/configuration.nix")
	for _, want := range []string{"efiInstallAsRemovable = true;", `efiSysMountPoint = "/boot-2";`, "boot.loader.efi.canTouchEfiVariables = false;"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("nixbook's configuration.nix lacks %q:\n%s", want, cfg)
		}
	}
}

// The same install with efiBootloaderPath left at OVH's Debian loader (the
// inventory's ovh_efi_bootloader_path names it, with the other slash, so
// nixbook leaves the API's path as it is): the firmware finds no such file on
// the ESPs and stops in the UEFI shell, off the network, and the install
// fails on that host, nixbook naming the loader path among the causes.
func TestUEFIStaleLoaderPathDoesNotBoot(t *testing.T) {
	f, playbook := startUEFI(t)
	r := f.nixbook(t, playbook, "-e", "ovh_efi_bootloader_path=/efi/debian/grubx64.efi", "-e", "install_timeout=15s")
	if r.code == 0 {
		t.Fatalf("the install succeeded:\n%s", r.out)
	}
	if !strings.Contains(r.out, `on this UEFI server, its EFI system partitions may hold no loader at the efiBootloaderPath the OVH API names (/efi/debian/grubx64.efi; GRUB installed as removable is at \EFI\BOOT\BOOTX64.EFI)`) {
		t.Errorf("nixbook does not point at the loader path:\n%s", r.out)
	}
	if c := r.recap(t, "ks1"); c["failed"] != 1 {
		t.Errorf("recap %v:\n%s", c, r.out)
	}
	st := f.Status("ks1")
	if st.SSH || st.Mode != sim.ModeIPXE || !strings.Contains(st.Why, `booted the UEFI shell: efiBootloaderPath \efi\debian\grubx64.efi names no file on the EFI system partitions (sda1:\EFI\BOOT\BOOTX64.EFI, sdb1:\EFI\BOOT\BOOTX64.EFI)`) {
		t.Errorf("ks1: %+v", st)
	}
}

// startUEFI starts a fleet of one two-disk UEFI server, rented with OVH's
// Debian loader as its efiBootloaderPath, and writes uefiPlaybook for it.
func startUEFI(t *testing.T) (*fleet, string) {
	t.Helper()
	f := start(t, 1, simtest.WithOverrides(&sim.Overrides{Hosts: map[string]sim.HostOverride{
		"ks1": {Firmware: sim.FirmwareUEFI, DiskCount: 2, DiskSize: "2GiB"},
	}}))
	h := f.Host("ks1")
	if st, ok := f.Emulator.Server(h.Service); !ok || !strings.EqualFold(st.EFIBootloaderPath, `\efi\debian\grubx64.efi`) {
		t.Fatalf("the server starts with efiBootloaderPath %q", st.EFIBootloaderPath)
	}
	playbook := filepath.Join(t.TempDir(), "install-uefi.yml")
	if err := os.WriteFile(playbook, []byte(uefiPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	return f, playbook
}
