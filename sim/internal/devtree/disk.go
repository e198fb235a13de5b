// Package devtree emulates a simulated host's block devices: its disks,
// sparse images behind the machine's loop devices, and what udev and the
// kernel would show of them inside the host (Tree): the nodes and
// /dev/disk links of its /dev, its /sys/block, the udev database lsblk
// reads, /proc/partitions, and the machine's loop devices the host may see.
package devtree

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Disk kinds.
const (
	SATA   = "sata"
	NVMe   = "nvme"
	Virtio = "virtio" // a vm host's disks (kind: vm)
)

// Disk is one disk of a host: a sparse file behind a loop device, shown in
// the host under the name a real server would give it.
type Disk struct {
	Name   string // sda, sdb, nvme0n1
	Kind   string // SATA or NVMe
	Size   int64  // bytes
	Serial string
	Image  string // the sparse file on the machine
	Loop   string // /dev/loopN on the machine

	// Controller is the kernel module of the disk's controller: ahci,
	// nvme, or a RAID controller's (megaraid_sas). The installed system's
	// initrd needs it to find its root.
	Controller string
}

// DiskName names the index-th disk (0-based) of a kind.
func DiskName(kind string, index int) string {
	if kind == NVMe {
		return fmt.Sprintf("nvme%dn1", index)
	}
	prefix := "sd"
	if kind == Virtio {
		prefix = "vd"
	}
	name := ""
	for n := index; ; n = n/26 - 1 {
		name = string(rune('a'+n%26)) + name
		if n < 26 {
			break
		}
	}
	return prefix + name
}

// PartName is the kernel's name of partition n (sda1, nvme0n1p1).
func (d *Disk) PartName(n int) string {
	if d.Kind == NVMe {
		return fmt.Sprintf("%sp%d", d.Name, n)
	}
	return fmt.Sprintf("%s%d", d.Name, n)
}

// ByID is the disk's /dev/disk/by-id name, as udev makes it.
func (d *Disk) ByID() string {
	if d.Kind == NVMe {
		return "nvme-NIXBOOK_SIM_NVME_" + d.Serial
	}
	if d.Kind == Virtio {
		return "virtio-" + d.Serial
	}
	return "ata-NIXBOOK_SIM_HDD_" + d.Serial
}

// ControllerModule is the module of the disk's controller: its kind's own
// unless the host has a RAID controller.
func (d *Disk) ControllerModule() string {
	switch {
	case d.Kind == NVMe:
		return "nvme"
	case d.Controller != "":
		return d.Controller
	}
	return "ahci"
}

// Path is the disk's device path inside its host.
func (d *Disk) Path() string { return "/dev/" + d.Name }

// ByIDPath is the disk's /dev/disk/by-id path inside its host.
func (d *Disk) ByIDPath() string { return "/dev/disk/by-id/" + d.ByID() }

// CreateImage makes a sparse image file of size bytes; an existing file is
// replaced (a fleet always starts from fresh disks).
func CreateImage(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create disk image: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("size disk image: %w", err)
	}
	return f.Close()
}

// AttachLoop binds a loop device to image with partition scanning on.
func AttachLoop(ctx context.Context, image string) (string, error) {
	out, err := exec.CommandContext(ctx, "losetup", "--find", "--show", "--partscan", image).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("losetup %s: %w: %s", image, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// DevNum reads a block device's major:minor from sysfs.
func DevNum(sysDir string) (uint32, uint32, error) {
	data, err := os.ReadFile(filepath.Join(sysDir, "dev"))
	if err != nil {
		return 0, 0, err
	}
	maj, min, ok := strings.Cut(strings.TrimSpace(string(data)), ":")
	if !ok {
		return 0, 0, fmt.Errorf("bad dev in %s", sysDir)
	}
	a, err1 := strconv.ParseUint(maj, 10, 32)
	b, err2 := strconv.ParseUint(min, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	return uint32(a), uint32(b), nil
}

// sysfsKiB is a block device's size in KiB from its sysfs directory.
func sysfsKiB(dir string) int64 {
	data, err := os.ReadFile(filepath.Join(dir, "size"))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return n / 2
}

// Partition is one partition of a loop device as the kernel sees it.
type Partition struct {
	Number       int
	MachinePath  string // /dev/loopNpM
	Major, Minor uint32
}

// Partitions lists the kernel's partitions of a loop device.
func Partitions(loop string) ([]Partition, error) {
	base := filepath.Base(loop)
	entries, err := os.ReadDir(filepath.Join("/sys/block", base))
	if err != nil {
		return nil, err
	}
	var parts []Partition
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), base+"p")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil {
			continue
		}
		maj, min, err := DevNum(filepath.Join("/sys/block", base, e.Name()))
		if err != nil {
			continue // vanishing while we look
		}
		parts = append(parts, Partition{Number: n, MachinePath: "/dev/" + e.Name(), Major: maj, Minor: min})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts, nil
}

// Probe runs blkid's low-level probe on a device and returns udev's
// properties (ID_FS_TYPE, ID_FS_LABEL_ENC, ID_PART_ENTRY_NAME, ...).
func Probe(ctx context.Context, dev string) map[string]string {
	out, _ := exec.CommandContext(ctx, "blkid", "-p", "-o", "udev", dev).Output()
	props := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			props[k] = v
		}
	}
	return props
}

// Describe sums up a disk's partition table and file systems.
func Describe(ctx context.Context, d *Disk) string {
	whole := Probe(ctx, d.Loop)
	parts, _ := Partitions(d.Loop)
	if len(parts) == 0 {
		if t := whole["ID_FS_TYPE"]; t != "" {
			return t
		}
		return "empty"
	}
	var b strings.Builder
	b.WriteString(whole["ID_PART_TABLE_TYPE"])
	b.WriteString(" [")
	for i, p := range parts {
		if i > 0 {
			b.WriteString(" ")
		}
		props := Probe(ctx, p.MachinePath)
		fmt.Fprintf(&b, "%s:%s", d.PartName(p.Number), orDash(props["ID_FS_TYPE"]))
		if l := props["ID_FS_LABEL"]; l != "" {
			fmt.Fprintf(&b, "(%s)", l)
		}
	}
	b.WriteString("]")
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ImageSHA256 is a SHA-256 over the content of a disk image: the offset and
// bytes of every 64 KiB block that is not all zeros. It depends on the bytes
// only, not on which blocks the file system allocated, and skips the holes of
// a sparse image instead of hashing gigabytes of zeros.
func ImageSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	const block = 64 << 10
	h := sha256.New()
	buf := make([]byte, block)
	zero := make([]byte, block)
	var off int64
	for off < st.Size() {
		data, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return "", err
		}
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return "", err
		}
		for pos := data / block * block; pos < hole; pos += block {
			n, err := f.ReadAt(buf, pos)
			if err != nil && !errors.Is(err, io.EOF) {
				return "", err
			}
			if n == 0 {
				break
			}
			if bytes.Equal(buf[:n], zero[:n]) {
				continue
			}
			fmt.Fprintf(h, "%d:", pos)
			h.Write(buf[:n])
		}
		off = (hole + block - 1) / block * block
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FlushLoop writes a loop device's cached blocks to its image file, so that
// the file holds everything a host wrote.
func FlushLoop(dev string) error {
	f, err := os.Open(dev)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
