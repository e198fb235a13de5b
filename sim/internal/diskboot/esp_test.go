package diskboot

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nixbook/nixbook/sim/internal/devtree"
)

// A vm host's ESPs are read from its raw disk images, as OVMF finds them:
// partitions of GPT type EF00 holding FAT, at their offsets in the image.
// The images are made by the real tools (sgdisk, mkfs.vfat, mtools).
func TestImageESPFiles(t *testing.T) {
	if err := requireTools("sgdisk", "parted", "mkfs.vfat", "mmd", "mcopy"); err != nil {
		t.Skip(err)
	}
	// mtools reach an ESP at its byte offset in the image (IMG@@OFFSET):
	// sector 4096 is 2097152, sector 139264 is 71303168.
	cases := []struct {
		name  string
		setup [][]string
		files []ESPFile
		esps  int
	}{
		{"no partition table", nil, nil, 0},
		{"an msdos table with an ESP-typed partition", [][]string{
			{"parted", "-s", "IMG", "mklabel", "msdos", "mkpart", "primary", "fat32", "1MiB", "33MiB", "set", "1", "esp", "on"},
		}, nil, 0},
		{"GPT: a BIOS boot partition, an ESP with GRUB, an EF00 partition without FAT", [][]string{
			{"sgdisk", "-n1:2048:4095", "-t1:ef02", "-n2:4096:69631", "-t2:ef00", "-n3:69632:135167", "-t3:ef00", "-n4:135168:0", "-t4:bf00", "IMG"},
			{"mkfs.vfat", "--offset", "4096", "IMG", "32768"},
			{"mmd", "-i", "IMG@@2097152", "::/EFI", "::/EFI/BOOT"},
			{"mcopy", "-i", "IMG@@2097152", "LOADER", "::/EFI/BOOT/BOOTX64.EFI"},
		}, []ESPFile{{Part: "vda2", Path: `\EFI\BOOT\BOOTX64.EFI`}}, 1},
		{"GPT: an ESP on the first and the third partition", [][]string{
			{"sgdisk", "-n1:4096:69631", "-t1:ef00", "-n2:69632:139263", "-t2:bf00", "-n3:139264:204799", "-t3:ef00", "IMG"},
			{"mkfs.vfat", "--offset", "4096", "IMG", "32768"},
			{"mkfs.vfat", "--offset", "139264", "IMG", "32768"},
			{"mmd", "-i", "IMG@@2097152", "::/EFI", "::/EFI/BOOT"},
			{"mcopy", "-i", "IMG@@2097152", "LOADER", "::/EFI/BOOT/BOOTX64.EFI"},
			{"mmd", "-i", "IMG@@71303168", "::/EFI", "::/EFI/debian"},
			{"mcopy", "-i", "IMG@@71303168", "LOADER", "::/EFI/debian/grubx64.efi"},
		}, []ESPFile{{Part: "vda1", Path: `\EFI\BOOT\BOOTX64.EFI`}, {Part: "vda3", Path: `\EFI\debian\grubx64.efi`}}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "disk.img")
			loader := filepath.Join(dir, "loader")
			if err := os.WriteFile(loader, []byte("a loader\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := devtree.CreateImage(img, 128<<20); err != nil {
				t.Fatal(err)
			}
			for _, argv := range c.setup {
				argv = slices.Clone(argv)
				for i, a := range argv {
					switch a {
					case "IMG":
						argv[i] = img
					case "LOADER":
						argv[i] = loader
					}
					if len(a) > 5 && a[:5] == "IMG@@" {
						argv[i] = img + a[3:]
					}
				}
				cmd := exec.Command(argv[0], argv[1:]...)
				cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%v: %v\n%s", argv, err, out)
				}
			}
			files, esps, err := imageESPFiles(&devtree.Disk{Name: "vda", Kind: devtree.Virtio, Image: img})
			if err != nil {
				t.Fatal(err)
			}
			if esps != c.esps || !slices.Equal(files, c.files) {
				t.Errorf("got %d ESPs with %v, want %d with %v", esps, files, c.esps, c.files)
			}
		})
	}
}

func requireTools(tools ...string) error {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (scripts/deps.sh installs it)", tool)
		}
	}
	return nil
}
