// Package disk names disks and partitions the way the kernel and udev do,
// and finds a task's disks among a host's facts.
package disk

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/nixbook/nixbook/internal/facts"
)

// ByIDDir is where udev links disks by their hardware identity.
const ByIDDir = "/dev/disk/by-id"

// MiB is a mebibyte in bytes.
const MiB = 1 << 20

// IsLink reports whether p is a udev link such as /dev/disk/by-id/ata-X or
// /dev/disk/by-path/pci-0000:00:1f.2-ata-1, rather than a kernel node.
func IsLink(p string) bool { return strings.HasPrefix(path.Clean(p), "/dev/disk/") }

// PartitionPath is the path of partition n of the disk at diskPath: udev's
// "-partN" suffix for /dev/disk/by-* links, the kernel's names otherwise:
// sda1, vda1, but nvme0n1p1, mmcblk0p1, loop0p1 and md0p1 when the disk's
// name ends in a digit.
func PartitionPath(diskPath string, n int) string {
	num := strconv.Itoa(n)
	if IsLink(diskPath) {
		return diskPath + "-part" + num
	}
	base := path.Base(diskPath)
	if base != "" && base[len(base)-1] >= '0' && base[len(base)-1] <= '9' {
		return diskPath + "p" + num
	}
	return diskPath + num
}

// PreferredByID picks the most stable by-id link of a disk (see
// facts.PreferredByID); "" when there is none.
func PreferredByID(links []string) string { return facts.PreferredByID(links) }

// Find returns the disk of f that name designates: its kernel path
// (/dev/sda), bare name (sda) or one of its /dev/disk/by-id links. The error
// lists the disks the host has.
func Find(f *facts.Facts, name string) (*facts.Disk, error) {
	if f != nil {
		if d, ok := f.Disk(name); ok {
			return d, nil
		}
	}
	return nil, fmt.Errorf("no disk %s; the host has %s", name, Describe(f))
}

// Describe lists a host's disks with their sizes for messages:
// "/dev/sda (8.0 GiB), /dev/nvme0n1 (1.0 TiB)" or "no disks".
func Describe(f *facts.Facts) string {
	if f == nil || len(f.Disks) == 0 {
		return "no disks"
	}
	var parts []string
	for _, d := range f.Disks {
		parts = append(parts, fmt.Sprintf("%s (%s)", d.Path, Human(d.SizeBytes)))
	}
	return strings.Join(parts, ", ")
}

// StableName is the name to give other tools for a disk: its preferred
// by-id link when it has one (names like /dev/sda may change between the
// rescue and the installed system), else its kernel path. given wins when
// it is itself a by-id link of the disk.
func StableName(d *facts.Disk, given string) string {
	if IsLink(given) && slices.Contains(d.ByID, path.Clean(given)) {
		return path.Clean(given)
	}
	if id := PreferredByID(d.ByID); id != "" {
		return id
	}
	return d.Path
}

// Human prints a size the way disk tools do, in binary units: "512 MiB",
// "8.0 GiB", "1.8 TiB".
func Human(bytes int64) string {
	const gib, tib = 1 << 30, 1 << 40
	switch {
	case bytes >= tib:
		return fmt.Sprintf("%.1f TiB", float64(bytes)/tib)
	case bytes >= gib:
		return fmt.Sprintf("%.1f GiB", float64(bytes)/gib)
	case bytes >= MiB:
		return fmt.Sprintf("%d MiB", bytes/MiB)
	case bytes >= 1<<10:
		return fmt.Sprintf("%d KiB", bytes>>10)
	}
	return fmt.Sprintf("%d B", bytes)
}
