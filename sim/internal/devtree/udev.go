package devtree

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nixbook/nixbook/sim/hostinit"
)

// entry is one thing under a host's /dev: a block node or a symbolic link.
type entry struct {
	major, minor uint32
	link         string // non-empty for a symbolic link
	data         string // the content of a regular file (with no link and no major)
	blocks       int64  // size in KiB, for /proc/partitions
}

// diskNodes computes what udev would make for a host's disks: the disk and
// partition nodes and /dev/disk/by-* links (keys relative to /dev), and its
// database entries (keys like b7:0, relative to /run/udev/data), which lsblk
// reads file systems from.
func diskNodes(ctx context.Context, disks []*Disk) (nodes, db map[string]entry, err error) {
	nodes, db = map[string]entry{}, map[string]entry{}
	var links []string // of the device being described
	link := func(dir, name, target string) {
		p := filepath.Join("disk", dir, name)
		if _, taken := nodes[p]; !taken && name != "" && !strings.Contains(name, "/") {
			nodes[p] = entry{link: "../../" + target}
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
	record := func(d *Disk, e entry, devtype, name string, props map[string]string) {
		var b strings.Builder
		for _, l := range links {
			fmt.Fprintf(&b, "S:%s\n", l)
		}
		fmt.Fprintf(&b, "E:DEVNAME=/dev/%s\nE:DEVTYPE=%s\nE:SUBSYSTEM=block\n", name, devtype)
		for _, kv := range diskIdentity(d) {
			fmt.Fprintf(&b, "E:%s\n", kv)
		}
		for _, k := range slices.Sorted(maps.Keys(props)) {
			fmt.Fprintf(&b, "E:%s=%s\n", k, props[k])
		}
		db[fmt.Sprintf("b%d:%d", e.major, e.minor)] = entry{data: b.String()}
	}
	for _, d := range disks {
		sys := filepath.Join("/sys/block", filepath.Base(d.Loop))
		maj, min, err := DevNum(sys)
		if err != nil {
			return nil, nil, fmt.Errorf("disk %s: %w", d.Name, err)
		}
		e := entry{major: maj, minor: min, blocks: sysfsKiB(sys)}
		nodes[d.Name] = e
		links = nil
		link("by-id", d.ByID(), d.Name)
		parts, err := Partitions(d.Loop)
		if err != nil {
			return nil, nil, fmt.Errorf("disk %s: %w", d.Name, err)
		}
		props := Probe(ctx, d.Loop)
		if len(parts) == 0 {
			fsLinks(props, d.Name)
		}
		record(d, e, "disk", d.Name, props)
		for _, p := range parts {
			name := d.PartName(p.Number)
			pe := entry{major: p.Major, minor: p.Minor, blocks: sysfsKiB(filepath.Join(sys, filepath.Base(p.MachinePath)))}
			nodes[name] = pe
			links = nil
			link("by-id", fmt.Sprintf("%s-part%d", d.ByID(), p.Number), name)
			props := Probe(ctx, p.MachinePath)
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
func sysEntries(disks []*Disk) (map[string]entry, error) {
	links := map[string]entry{}
	for _, d := range disks {
		loop := filepath.Base(d.Loop)
		real := "/sys/devices/virtual/block/" + loop
		entries, err := os.ReadDir(real)
		if err != nil {
			return nil, err
		}
		maj, min, err := DevNum(real)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), loop+"p") {
				links["block/"+d.Name+"/"+e.Name()] = entry{link: real + "/" + e.Name()}
			}
		}
		links[fmt.Sprintf("dev/block/%d:%d", maj, min)] = entry{link: "/sys/block/" + d.Name}
		links["class/block/"+d.Name] = entry{link: "/sys/block/" + d.Name}
		// The controller's driver, where facts and nixos-generate-config
		// look for it (on a server, on the PCI device above the disk).
		links["block/"+d.Name+"/device/driver"] = entry{link: "/sys/bus/pci/drivers/" + d.ControllerModule()}
		parts, err := Partitions(d.Loop)
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			name := d.PartName(p.Number)
			links["block/"+d.Name+"/"+name] = entry{link: real + "/" + filepath.Base(p.MachinePath)}
			links[fmt.Sprintf("dev/block/%d:%d", p.Major, p.Minor)] = entry{link: "/sys/block/" + d.Name + "/" + name}
			links["class/block/"+name] = entry{link: "/sys/block/" + d.Name + "/" + name}
		}
	}
	return links, nil
}

// partitionsFile renders /proc/partitions for a host's block nodes.
func partitionsFile(nodes map[string]entry) string {
	type row struct {
		e    entry
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
	nodes, db, sys map[string]entry
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
func (s *diskScan) entries() (nodes, db, sys map[string]entry) {
	return maps.Clone(s.nodes), maps.Clone(s.db), maps.Clone(s.sys)
}

// syncEntries makes devDir (a host's /dev, seen from the machine through
// /proc/PID/root) hold exactly want among the entries it manages; have is
// what it made so far and is updated in place.
func syncEntries(devDir string, want, have map[string]entry) error {
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
		parts, _ := Partitions(d.Loop)
		for _, p := range parts {
			fmt.Fprintf(&b, "%d=%d:%d,", p.Number, p.Major, p.Minor)
		}
		b.WriteByte('|')
	}
	return b.String()
}

// blockRules are the cgroup rules of the block nodes among entries.
func blockRules(entries map[string]entry) map[string]bool {
	rules := map[string]bool{}
	for _, e := range entries {
		if e.link == "" && e.major != 0 {
			rules[fmt.Sprintf("b %d:%d", e.major, e.minor)] = true
		}
	}
	return rules
}

// DevNames are the paths that udev makes under /dev for the disks, their
// partitions and their /dev/disk links, each with the device it is in this
// boot ("MAJ:MIN", a link's target's); never nil without an error, even
// for no disk.
func DevNames(ctx context.Context, disks []*Disk) (map[string]string, error) {
	nodes, _, err := diskNodes(ctx, disks)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, e := range nodes {
		if e.link != "" {
			e = nodes[strings.TrimPrefix(e.link, "../../")]
		}
		out["/dev/"+name] = fmt.Sprintf("%d:%d", e.major, e.minor)
	}
	return out, nil
}

// UdevInfo answers `udevadm info --query=property --name=DEV` for the
// host's disks and partitions.
func (t *Tree) UdevInfo(ctx context.Context, args []string) hostinit.Reply {
	name := ""
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "--name="):
			name = strings.TrimPrefix(a, "--name=")
		case (a == "-n" || a == "--name") && i+1 < len(args):
			name = args[i+1]
		case !strings.HasPrefix(a, "-") && (i == 0 || !strings.HasPrefix(args[i-1], "-") || strings.Contains(args[i-1], "=")):
			name = a
		}
	}
	name = strings.TrimPrefix(name, "/dev/")
	for _, d := range t.BootDisks() {
		if name == d.Name {
			props := Probe(ctx, d.Loop)
			return udevProps(d.Path(), "disk", d, props)
		}
		parts, _ := Partitions(d.Loop)
		for _, p := range parts {
			if name == d.PartName(p.Number) {
				return udevProps("/dev/"+name, "partition", d, Probe(ctx, p.MachinePath))
			}
		}
	}
	return hostinit.Reply{Stderr: fmt.Sprintf("Unknown device \"%s\": No such device\n", name), Code: 4}
}

func udevProps(devname, devtype string, d *Disk, props map[string]string) hostinit.Reply {
	var b strings.Builder
	fmt.Fprintf(&b, "DEVNAME=%s\nDEVTYPE=%s\nSUBSYSTEM=block\n", devname, devtype)
	if d.Kind == NVMe {
		fmt.Fprintf(&b, "ID_MODEL=NIXBOOK_SIM_NVME\nID_SERIAL=NIXBOOK_SIM_NVME_%s\nID_SERIAL_SHORT=%s\n", d.Serial, d.Serial)
	} else {
		fmt.Fprintf(&b, "ID_BUS=ata\nID_ATA=1\nID_MODEL=NIXBOOK_SIM_HDD\nID_SERIAL=NIXBOOK_SIM_HDD_%s\nID_SERIAL_SHORT=%s\n", d.Serial, d.Serial)
	}
	for _, k := range slices.Sorted(maps.Keys(props)) {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	return hostinit.Reply{Stdout: b.String()}
}
