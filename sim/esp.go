package sim

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/nixbook/nixbook/sim/internal/devtree"
	"github.com/nixbook/nixbook/sim/internal/fatfs"
	"github.com/nixbook/nixbook/sim/ovhapi"
)

// The partition types of an EFI system partition: GPT's EF00 and MBR's 0xef.
const (
	espGUID = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	espMBR  = "0xef"
)

// espFile is a file on one of the host's EFI system partitions.
type espFile struct {
	part string // sda1, as the host names it
	path string // \EFI\BOOT\BOOTX64.EFI
}

// espFiles lists the files on the host's EFI system partitions as they
// are now: every partition of the ESP type holding FAT, on every disk,
// read from the device itself (the machine's kernel has no vfat).
func (h *Host) espFiles(ctx context.Context) ([]espFile, int, error) {
	if h.vm != nil {
		return h.vmESPFiles()
	}
	var out []espFile
	esps := 0
	for _, d := range h.devs.BootDisks() {
		parts, err := devtree.Partitions(d.Loop)
		if err != nil {
			return nil, esps, err
		}
		for _, p := range parts {
			props := devtree.Probe(ctx, p.MachinePath)
			typ := strings.ToLower(props["ID_PART_ENTRY_TYPE"])
			if (typ != espGUID && typ != espMBR) || props["ID_FS_TYPE"] != "vfat" {
				continue
			}
			esps++
			name := d.PartName(p.Number)
			files, err := readFAT(p.MachinePath)
			if err != nil {
				return nil, esps, fmt.Errorf("%s: %w", name, err)
			}
			for _, f := range files {
				out = append(out, espFile{part: name, path: f})
			}
		}
	}
	return out, esps, nil
}

func readFAT(dev string) ([]string, error) {
	f, err := os.Open(dev)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return fatfs.Files(f)
}

// efiBoot is what the firmware finds when it boots the disks through the
// loader path (OVH's efiBootloaderPath): nil when a file at that path (any
// case, either slash, as FAT and UEFI match names) is on an EFI system
// partition, else why it stops in the UEFI shell.
func (h *Host) efiBoot(ctx context.Context, path string) error {
	if strings.TrimSpace(path) == "" {
		return fmt.Errorf("efiBootloaderPath is empty: the firmware has no loader to start")
	}
	files, esps, err := h.espFiles(ctx)
	if err != nil {
		return fmt.Errorf("an EFI system partition cannot be read: %w", err)
	}
	if esps == 0 {
		return fmt.Errorf("no EFI system partition on the disks (a GPT partition of type EF00 holding FAT): efiBootloaderPath %s names nothing", path)
	}
	want := normalEFIPath(path)
	var have []string
	for _, f := range files {
		if normalEFIPath(f.path) == want {
			return nil
		}
		if strings.HasSuffix(strings.ToLower(f.path), ".efi") {
			have = append(have, f.part+":"+f.path)
		}
	}
	if len(have) == 0 {
		have = []string{"no .efi file"}
	}
	return fmt.Errorf("efiBootloaderPath %s names no file on the EFI system partitions (%s)", path, strings.Join(have, ", "))
}

// normalEFIPath is a loader path as FAT compares it: without case, with
// backslashes and a leading one.
func normalEFIPath(p string) string {
	p = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(p), "/", `\`))
	if !strings.HasPrefix(p, `\`) {
		p = `\` + p
	}
	return p
}

// efiBootloaderPath is the loader path the API gives the server now; OVH's
// Debian loader when the fleet has no API.
func (h *Host) efiBootloaderPath() string {
	if h.f.emu != nil {
		if st, ok := h.f.emu.Server(h.service); ok {
			return st.EFIBootloaderPath
		}
	}
	return ovhapi.DebianEFILoader
}
