package diskboot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nixbook/nixbook/sim/internal/devtree"
	"github.com/nixbook/nixbook/sim/internal/fatfs"
)

// The partition types of an EFI system partition: GPT's EF00 and MBR's 0xef.
const (
	espGUID = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	espMBR  = "0xef"
)

// ESPFile is a file on one of the host's EFI system partitions.
type ESPFile struct {
	Part string // sda1, as the host names it
	Path string // \EFI\BOOT\BOOTX64.EFI
}

// ESPFiles lists the files on the host's EFI system partitions as they
// are now, and how many there are: every partition of the ESP type holding
// FAT, on every disk, read from the device itself (the machine's kernel
// has no vfat) or, with Images, from the disk's image, where the firmware
// QEMU runs finds it.
func (b Boot) ESPFiles(ctx context.Context) ([]ESPFile, int, error) {
	if b.Images {
		return imagesESPFiles(b.Disks)
	}
	var out []ESPFile
	esps := 0
	for _, d := range b.Disks {
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
				out = append(out, ESPFile{Part: name, Path: f})
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

// EFI is what the firmware finds when it boots the disks through the
// loader path (OVH's efiBootloaderPath): nil when a file at that path (any
// case, either slash, as FAT and UEFI match names) is on an EFI system
// partition, else why it stops in the UEFI shell.
func (b Boot) EFI(ctx context.Context, path string) error {
	if strings.TrimSpace(path) == "" {
		return fmt.Errorf("efiBootloaderPath is empty: the firmware has no loader to start")
	}
	files, esps, err := b.ESPFiles(ctx)
	if err != nil {
		return fmt.Errorf("an EFI system partition cannot be read: %w", err)
	}
	if esps == 0 {
		return fmt.Errorf("no EFI system partition on the disks (a GPT partition of type EF00 holding FAT): efiBootloaderPath %s names nothing", path)
	}
	want := normalEFIPath(path)
	var have []string
	for _, f := range files {
		if normalEFIPath(f.Path) == want {
			return nil
		}
		if strings.HasSuffix(strings.ToLower(f.Path), ".efi") {
			have = append(have, f.Part+":"+f.Path)
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

// espGUIDBytes is the ESP's type GUID (espGUID) as GPT stores it: its
// first three fields little-endian.
var espGUIDBytes = []byte{0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b}

// imagePart is a partition of a raw disk image: its number (1-based, as
// the kernel names it) and where its bytes lie in the image.
type imagePart struct {
	number       int
	offset, size int64
}

// gptESPs lists the partitions of type EF00 in a raw image's GPT, read as
// the firmware reads them (512-byte sectors, the primary header). An image
// without a GPT has none.
func gptESPs(r io.ReaderAt) ([]imagePart, error) {
	const sector = 512
	hdr := make([]byte, 92)
	if _, err := r.ReadAt(hdr, sector); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	if string(hdr[:8]) != "EFI PART" {
		return nil, nil
	}
	start := int64(binary.LittleEndian.Uint64(hdr[72:]))
	count := binary.LittleEndian.Uint32(hdr[80:])
	size := binary.LittleEndian.Uint32(hdr[84:])
	if size < 128 || size > 4096 || count > 1024 {
		return nil, fmt.Errorf("a GPT header with %d entries of %d bytes", count, size)
	}
	table := make([]byte, int(count)*int(size))
	if _, err := r.ReadAt(table, start*sector); err != nil {
		return nil, fmt.Errorf("the GPT's entries: %w", err)
	}
	var out []imagePart
	for i := 0; i < int(count); i++ {
		e := table[i*int(size):]
		if !bytes.Equal(e[:16], espGUIDBytes) {
			continue
		}
		first, last := int64(binary.LittleEndian.Uint64(e[32:])), int64(binary.LittleEndian.Uint64(e[40:]))
		if last < first {
			continue
		}
		out = append(out, imagePart{number: i + 1, offset: first * sector, size: (last - first + 1) * sector})
	}
	return out, nil
}

// isFAT says whether a partition starts with a FAT boot sector, as blkid's
// vfat: the signature and the file system's name in either layout.
func isFAT(r io.ReaderAt) bool {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err != nil {
		return false
	}
	return b[510] == 0x55 && b[511] == 0xaa && (bytes.HasPrefix(b[54:], []byte("FAT")) || bytes.HasPrefix(b[82:], []byte("FAT32")))
}

// imagesESPFiles is ESPFiles read from the disks' images.
func imagesESPFiles(disks []*devtree.Disk) ([]ESPFile, int, error) {
	var out []ESPFile
	esps := 0
	for _, d := range disks {
		files, n, err := imageESPFiles(d)
		esps += n
		if err != nil {
			return nil, esps, err
		}
		out = append(out, files...)
	}
	return out, esps, nil
}

func imageESPFiles(d *devtree.Disk) ([]ESPFile, int, error) {
	img, err := os.Open(d.Image)
	if err != nil {
		return nil, 0, err
	}
	defer img.Close()
	parts, err := gptESPs(img)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", d.Name, err)
	}
	var out []ESPFile
	esps := 0
	for _, p := range parts {
		sec := io.NewSectionReader(img, p.offset, p.size)
		if !isFAT(sec) {
			continue
		}
		esps++
		name := d.PartName(p.number)
		files, err := fatfs.Files(sec)
		if err != nil {
			return nil, esps, fmt.Errorf("%s: %w", name, err)
		}
		for _, f := range files {
			out = append(out, ESPFile{Part: name, Path: f})
		}
	}
	return out, esps, nil
}
