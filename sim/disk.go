package sim

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nixbook/nixbook/sim/internal/devtree"
)

// Disk kinds.
const (
	SATA   = devtree.SATA
	NVMe   = devtree.NVMe
	Virtio = devtree.Virtio // a vm host's disks (kind: vm)
)

// Disk is one disk of a host: a sparse file behind a loop device, shown in
// the host under the name a real server would give it.
type Disk = devtree.Disk

// writeOldOS gives a fresh disk what a server rented with OVH's Debian
// template has: an msdos table, an ext4 root with a Debian on it (its own
// host key, root's authorized key, a static network configuration) and a
// swap partition. On a UEFI server the table is GPT and an EFI system
// partition comes first, holding Debian's GRUB at \EFI\debian\grubx64.efi
// (the efiBootloaderPath OVH gives such a server). A disk boot brings it
// up and it answers SSH.
func writeOldOS(ctx context.Context, d *Disk, authorizedKey string, uefi bool) error {
	swapStart := d.Size/(1<<20) - 512
	if swapStart < 64 {
		swapStart = d.Size / (1 << 20) / 2
	}
	rootStart, rootPart, swapPart := "1MiB", d.Loop+"p1", d.Loop+"p2"
	args := []string{"-s", "-a", "optimal", d.Loop, "mklabel", "msdos"}
	if uefi {
		rootStart, rootPart, swapPart = "65MiB", d.Loop+"p2", d.Loop+"p3"
		args = append(args[:len(args)-1], "gpt", "mkpart", "EFI", "fat32", "1MiB", rootStart, "set", "1", "esp", "on")
	}
	args = append(args,
		"mkpart", "primary", "ext4", rootStart, fmt.Sprintf("%dMiB", swapStart),
		"mkpart", "primary", "linux-swap", fmt.Sprintf("%dMiB", swapStart), "100%")
	if !uefi {
		args = append(args, "set", "1", "boot", "on")
	}
	out, err := exec.CommandContext(ctx, "parted", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("parted: %w: %s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "partx", "-u", d.Loop).CombinedOutput(); err != nil {
		return fmt.Errorf("partx: %w: %s", err, out)
	}
	root, err := os.MkdirTemp("", "nixbook-sim-old-os-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	key, err := newKeyPair("root@old-server")
	if err != nil {
		return err
	}
	files := map[string]string{
		"etc/os-release":                   "PRETTY_NAME=\"Debian GNU/Linux 11 (bullseye)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"11\"\nID=debian\n",
		"etc/hostname":                     "old-server\n",
		"etc/fstab":                        "LABEL=debian / ext4 defaults 0 1\n",
		"etc/network/interfaces":           "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n",
		"etc/ssh/ssh_host_ed25519_key":     key.Private,
		"etc/ssh/ssh_host_ed25519_key.pub": key.Public,
		"root/.ssh/authorized_keys":        authorizedKey + "\n",
		"root/data.txt":                    "data the old OS kept\n",
		"home/debian/.bash_history":        "sudo apt upgrade\n",
	}
	for p, data := range files {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.Contains(p, "_key") && !strings.HasSuffix(p, ".pub") || strings.HasPrefix(p, "root/.ssh") {
			mode = 0o600
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(data), mode); err != nil {
			return err
		}
	}
	for range 50 {
		if _, err := os.Stat(swapPart); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", "debian", "-d", root, rootPart).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4: %w: %s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "mkswap", "-L", "swap", swapPart).CombinedOutput(); err != nil {
		return fmt.Errorf("mkswap: %w: %s", err, out)
	}
	if uefi {
		if err := writeDebianESP(ctx, d.Loop+"p1", root); err != nil {
			return err
		}
	}
	return devtree.FlushLoop(d.Loop)
}

// writeDebianESP makes the EFI system partition of OVH's Debian: FAT with
// Debian's GRUB (and shim) under EFI/debian, written with mtools, as this
// kernel cannot mount vfat.
func writeDebianESP(ctx context.Context, part, scratch string) error {
	loader := filepath.Join(scratch, "grubx64.efi")
	if err := os.WriteFile(loader, []byte("GRUB x86_64-efi image of Debian 11 (nixbook-sim stand-in)\n"), 0o644); err != nil {
		return err
	}
	cmds := [][]string{
		{"mkfs.vfat", "-F", "32", "-n", "EFI", part},
		{"mmd", "-i", part, "::/EFI", "::/EFI/debian"},
		{"mcopy", "-i", part, loader, "::/EFI/debian/grubx64.efi"},
		{"mcopy", "-i", part, loader, "::/EFI/debian/shimx64.efi"},
	}
	for _, c := range cmds {
		cmd := exec.CommandContext(ctx, c[0], c[1:]...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", c[0], err, out)
		}
	}
	return nil
}
