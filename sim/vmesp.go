package sim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/nixbook/nixbook/sim/internal/fatfs"
)

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

// vmESPFiles is espFiles for a vm host: the ESPs of the disk images the
// machine has (not the pulled ones), read from the images, where the
// firmware QEMU runs finds them.
func (h *Host) vmESPFiles() ([]espFile, int, error) {
	h.mu.Lock()
	var disks []*Disk
	for i, d := range h.disks {
		if !h.vm.pulled[i] {
			disks = append(disks, d)
		}
	}
	h.mu.Unlock()
	var out []espFile
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

func imageESPFiles(d *Disk) ([]espFile, int, error) {
	img, err := os.Open(d.Image)
	if err != nil {
		return nil, 0, err
	}
	defer img.Close()
	parts, err := gptESPs(img)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", d.Name, err)
	}
	var out []espFile
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
			out = append(out, espFile{part: name, path: f})
		}
	}
	return out, esps, nil
}
