package sim

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixbook/nixbook/sim/hostinit"
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

// diskName names the index-th disk (0-based) of a kind.
func diskName(kind string, index int) string {
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

// controller is the module of the disk's controller: its kind's own
// unless the host has a RAID controller.
func (d *Disk) controller() string {
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

// createImage makes a sparse image file of size bytes; an existing file is
// replaced (a fleet always starts from fresh disks).
func createImage(path string, size int64) error {
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

// attachLoop binds a loop device to image with partition scanning on.
func attachLoop(ctx context.Context, image string) (string, error) {
	out, err := exec.CommandContext(ctx, "losetup", "--find", "--show", "--partscan", image).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("losetup %s: %w: %s", image, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// devNum reads a block device's major:minor from sysfs.
func devNum(sysDir string) (uint32, uint32, error) {
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

// partition is one partition of a loop device as the kernel sees it.
type partition struct {
	number       int
	machinePath  string // /dev/loopNpM
	major, minor uint32
}

// partitions lists the kernel's partitions of a loop device.
func partitions(loop string) ([]partition, error) {
	base := filepath.Base(loop)
	entries, err := os.ReadDir(filepath.Join("/sys/block", base))
	if err != nil {
		return nil, err
	}
	var parts []partition
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), base+"p")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil {
			continue
		}
		maj, min, err := devNum(filepath.Join("/sys/block", base, e.Name()))
		if err != nil {
			continue // vanishing while we look
		}
		parts = append(parts, partition{number: n, machinePath: "/dev/" + e.Name(), major: maj, minor: min})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].number < parts[j].number })
	return parts, nil
}

// probe runs blkid's low-level probe on a device and returns udev's
// properties (ID_FS_TYPE, ID_FS_LABEL_ENC, ID_PART_ENTRY_NAME, ...).
func probe(ctx context.Context, dev string) map[string]string {
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

// devEntry is one thing under a host's /dev: a block node or a symbolic link.
type devEntry struct {
	major, minor uint32
	link         string // non-empty for a symbolic link
	data         string // the content of a regular file (with no link and no major)
	blocks       int64  // size in KiB, for /proc/partitions
}

// diskNodes computes what udev would make for a host's disks: the disk and
// partition nodes and /dev/disk/by-* links (keys relative to /dev), and its
// database entries (keys like b7:0, relative to /run/udev/data), which lsblk
// reads file systems from.
func diskNodes(ctx context.Context, disks []*Disk) (nodes, db map[string]devEntry, err error) {
	nodes, db = map[string]devEntry{}, map[string]devEntry{}
	var links []string // of the device being described
	link := func(dir, name, target string) {
		p := filepath.Join("disk", dir, name)
		if _, taken := nodes[p]; !taken && name != "" && !strings.Contains(name, "/") {
			nodes[p] = devEntry{link: "../../" + target}
			links = append(links, p)
		}
	}
	fsLinks := func(props map[string]string, target string) {
		switch props["ID_FS_USAGE"] {
		case "filesystem", "other", "crypto":
			link("by-uuid", props["ID_FS_UUID_ENC"], target)
			link("by-label", props["ID_FS_LABEL_ENC"], target)
		}
		if props["ID_PART_ENTRY_SCHEME"] == "gpt" {
			link("by-partlabel", props["ID_PART_ENTRY_NAME"], target)
		}
		link("by-partuuid", props["ID_PART_ENTRY_UUID"], target)
	}
	record := func(d *Disk, e devEntry, devtype, name string, props map[string]string) {
		var b strings.Builder
		for _, l := range links {
			fmt.Fprintf(&b, "S:%s\n", l)
		}
		fmt.Fprintf(&b, "E:DEVNAME=/dev/%s\nE:DEVTYPE=%s\nE:SUBSYSTEM=block\n", name, devtype)
		for _, kv := range diskIdentity(d) {
			fmt.Fprintf(&b, "E:%s\n", kv)
		}
		for _, k := range sortedKeys(props) {
			fmt.Fprintf(&b, "E:%s=%s\n", k, props[k])
		}
		db[fmt.Sprintf("b%d:%d", e.major, e.minor)] = devEntry{data: b.String()}
	}
	for _, d := range disks {
		sys := filepath.Join("/sys/block", filepath.Base(d.Loop))
		maj, min, err := devNum(sys)
		if err != nil {
			return nil, nil, fmt.Errorf("disk %s: %w", d.Name, err)
		}
		e := devEntry{major: maj, minor: min, blocks: sysfsKiB(sys)}
		nodes[d.Name] = e
		links = nil
		link("by-id", d.ByID(), d.Name)
		parts, err := partitions(d.Loop)
		if err != nil {
			return nil, nil, fmt.Errorf("disk %s: %w", d.Name, err)
		}
		props := probe(ctx, d.Loop)
		if len(parts) == 0 {
			fsLinks(props, d.Name)
		}
		record(d, e, "disk", d.Name, props)
		for _, p := range parts {
			name := d.PartName(p.number)
			pe := devEntry{major: p.major, minor: p.minor, blocks: sysfsKiB(filepath.Join(sys, filepath.Base(p.machinePath)))}
			nodes[name] = pe
			links = nil
			link("by-id", fmt.Sprintf("%s-part%d", d.ByID(), p.number), name)
			props := probe(ctx, p.machinePath)
			fsLinks(props, name)
			record(d, pe, "partition", name, props)
		}
	}
	return nodes, db, nil
}

// diskIdentity is what udev knows of a disk from its hardware.
func diskIdentity(d *Disk) []string {
	if d.Kind == NVMe {
		return []string{"ID_MODEL=NIXBOOK_SIM_NVME", "ID_SERIAL=NIXBOOK_SIM_NVME_" + d.Serial, "ID_SERIAL_SHORT=" + d.Serial}
	}
	return []string{"ID_BUS=ata", "ID_ATA=1", "ID_TYPE=disk", "ID_MODEL=NIXBOOK_SIM_HDD", "ID_SERIAL=NIXBOOK_SIM_HDD_" + d.Serial, "ID_SERIAL_SHORT=" + d.Serial}
}

// sysEntries computes the host's view of the block devices in sysfs: its
// disks and partitions under their host names, linked to the loop devices'
// real directories.
func sysEntries(disks []*Disk) (map[string]devEntry, error) {
	links := map[string]devEntry{}
	for _, d := range disks {
		loop := filepath.Base(d.Loop)
		real := "/sys/devices/virtual/block/" + loop
		entries, err := os.ReadDir(real)
		if err != nil {
			return nil, err
		}
		maj, min, err := devNum(real)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), loop+"p") {
				links["block/"+d.Name+"/"+e.Name()] = devEntry{link: real + "/" + e.Name()}
			}
		}
		links[fmt.Sprintf("dev/block/%d:%d", maj, min)] = devEntry{link: "/sys/block/" + d.Name}
		links["class/block/"+d.Name] = devEntry{link: "/sys/block/" + d.Name}
		// The controller's driver, where facts and nixos-generate-config
		// look for it (on a server, on the PCI device above the disk).
		links["block/"+d.Name+"/device/driver"] = devEntry{link: "/sys/bus/pci/drivers/" + d.controller()}
		parts, err := partitions(d.Loop)
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			name := d.PartName(p.number)
			links["block/"+d.Name+"/"+name] = devEntry{link: real + "/" + filepath.Base(p.machinePath)}
			links[fmt.Sprintf("dev/block/%d:%d", p.major, p.minor)] = devEntry{link: "/sys/block/" + d.Name + "/" + name}
			links["class/block/"+name] = devEntry{link: "/sys/block/" + d.Name + "/" + name}
		}
	}
	return links, nil
}

// partitionsFile renders /proc/partitions for a host's block nodes.
func partitionsFile(nodes map[string]devEntry) string {
	type row struct {
		e    devEntry
		name string
	}
	var rows []row
	for p, e := range nodes {
		// The kernel leaves devices without capacity (free loops) out.
		if e.link == "" && e.data == "" && e.blocks > 0 && !strings.Contains(p, "/") {
			rows = append(rows, row{e, p})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].e.major != rows[j].e.major {
			return rows[i].e.major < rows[j].e.major
		}
		return rows[i].e.minor < rows[j].e.minor
	})
	var b strings.Builder
	b.WriteString(hostinit.PartitionsHeader)
	for _, r := range rows {
		fmt.Fprintf(&b, "%4d  %7d %10d %s\n", r.e.major, r.e.minor, r.e.blocks, r.name)
	}
	return b.String()
}

// diskScan is what udev made of a host's disks at one diskChangeKey.
type diskScan struct {
	key            string
	nodes, db, sys map[string]devEntry
}

// scanDisks probes the disks (see diskNodes and sysEntries).
func scanDisks(ctx context.Context, disks []*Disk, key string) (*diskScan, error) {
	nodes, db, err := diskNodes(ctx, disks)
	if err != nil {
		return nil, err
	}
	sys, err := sysEntries(disks)
	if err != nil {
		return nil, err
	}
	return &diskScan{key: key, nodes: nodes, db: db, sys: sys}, nil
}

// entries are copies of the scan's maps, for the caller to add the host's
// loop devices to.
func (s *diskScan) entries() (nodes, db, sys map[string]devEntry) {
	return maps.Clone(s.nodes), maps.Clone(s.db), maps.Clone(s.sys)
}

// syncDev makes devDir (a host's /dev, seen from the machine through
// /proc/PID/root) hold exactly want among the entries it manages; have is
// what it made so far and is updated in place.
func syncDev(devDir string, want, have map[string]devEntry) error {
	var errs []error
	for p := range have {
		if _, ok := want[p]; ok {
			continue // replaced in place below
		}
		if err := os.Remove(filepath.Join(devDir, p)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		delete(have, p)
	}
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		e := want[p]
		if h, ok := have[p]; ok && h == e {
			continue
		}
		full := filepath.Join(devDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		// A changed entry is made beside the old one and renamed over it, so
		// the path never goes missing: a tool opening it meanwhile finds
		// the old node or the new one, as udev's own updates do. A new one
		// is made in place, so that directories list entries in the order
		// they were made, as sysfs lists a disk's partitions.
		next := full
		if _, replacing := have[p]; replacing {
			next = filepath.Join(filepath.Dir(full), "."+filepath.Base(full)+".new") // hidden from globs such as /dev/sd*
		}
		_ = os.Remove(next)
		var err error
		if e.link != "" {
			err = os.Symlink(e.link, next)
		} else if e.major == 0 {
			err = os.WriteFile(next, []byte(e.data), 0o644)
		} else {
			err = unix.Mknod(next, unix.S_IFBLK|0o660, int(unix.Mkdev(e.major, e.minor)))
			if err == nil {
				err = os.Chown(next, 0, 6) // root:disk, as udev does
			}
		}
		if errors.Is(err, os.ErrExist) && e.link != "" && next == full {
			err = nil // a directory of the machine's sysfs is in the way
		}
		if err == nil && next != full {
			err = os.Rename(next, full)
			if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.EBUSY) {
				// A directory of the machine's sysfs is in the way.
				_ = os.Remove(next)
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("/dev/%s: %w", p, err))
			continue
		}
		have[p] = e
	}
	return errors.Join(errs...)
}

// diskChangeKey summarises what can change a host's /dev: the kernel's
// partitions of each disk, its size and, withTimes (when writes to the
// disks' nodes are not watched), the last write to each image.
func diskChangeKey(disks []*Disk, withTimes bool) string {
	var b strings.Builder
	for _, d := range disks {
		fmt.Fprintf(&b, "%s %s ", d.Image, d.Loop)
		if st, err := os.Stat(d.Image); err == nil {
			mtime := int64(0)
			if withTimes {
				mtime = st.ModTime().UnixNano()
			}
			fmt.Fprintf(&b, "%s %d %d;", d.Name, mtime, st.Size())
		}
		parts, _ := partitions(d.Loop)
		for _, p := range parts {
			fmt.Fprintf(&b, "%d=%d:%d,", p.number, p.major, p.minor)
		}
		b.WriteByte('|')
	}
	return b.String()
}

// imageSHA256 is a SHA-256 over the content of a disk image: the offset and
// bytes of every 64 KiB block that is not all zeros. It depends on the bytes
// only, not on which blocks the file system allocated, and skips the holes of
// a sparse image instead of hashing gigabytes of zeros.
func imageSHA256(path string) (string, error) {
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

// flushLoop writes a loop device's cached blocks to its image file, so that
// the file holds everything a host wrote.
func flushLoop(dev string) error {
	f, err := os.Open(dev)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

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
	return flushLoop(d.Loop)
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
