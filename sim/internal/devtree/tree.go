package devtree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixbook/nixbook/sim/internal/devcgroup"
)

// Config is what a host's tree needs of the host and of its fleet.
type Config struct {
	Host string // the host's name, for messages
	// ReorderDisks swaps the kernel's names of the disks pairwise on every
	// other boot.
	ReorderDisks bool
	// Loops are the machine's loop devices as the fleet sees them.
	Loops *MachineLoops
	// Nodes is the fleet's watch of writes to the disks' nodes; nil: none,
	// the disks are probed at every settle and when an image's time changes.
	Nodes *NodeWatch
	Logf  func(format string, args ...any)
}

// Tree is a host's block devices as its kernel and udev show them: the
// disks under the names this boot gives them, and what is made for them
// in the host's root (seen from the machine through /proc/PID/root) while
// its init runs.
type Tree struct {
	cfg Config

	// syncMu is held through Sync: the watcher's and a settle's would
	// otherwise race to write /dev, the older probe last.
	syncMu sync.Mutex

	mu     sync.Mutex
	disks  []*Disk
	cgroup *devcgroup.Cgroup // nil without the devices controller
	// names are the kernel's names of the disks in this boot, in the order
	// of disks; nil before the first boot (the names the disks were made
	// with).
	names []string
	// pid is the init whose root is built and filled; 0 while there is
	// none. halted: the host is going down, nothing more is written.
	pid    int
	halted bool
	stage  uint64 // device of the boot's RAM disk
	// dev, sys and udev are what was made in the host's /dev, /sys and
	// udev database; nil until the root is built.
	dev, sys, udev map[string]entry
	key            string

	// scan is the last probe of the disks (blkid on each disk and
	// partition), reused while they do not change: a change of the
	// machine's loop devices alters only the host's loop nodes.
	scan *diskScan
	// written: something wrote to a disk node since the last probe (see
	// NodeWatch); unwatched: a node could not be watched, so the probe
	// follows the images' times and every settle, as without events.
	written, unwatched atomic.Bool
	// scans counts the probes, for tests of when they happen.
	scans atomic.Int64
}

// New is the tree of a host without disks yet.
func New(cfg Config) *Tree {
	return &Tree{cfg: cfg}
}

// SetDisks gives the host its disks, as made, before its first boot.
func (t *Tree) SetDisks(disks []*Disk) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.disks = disks
}

// SetCgroup confines the host's processes to the devices of its tree.
func (t *Tree) SetCgroup(c *devcgroup.Cgroup) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cgroup = c
}

// NameDisks names the disks as the kernel does in the host's boot number
// n (0 the first): the names they were made with, swapped pairwise on
// every other boot when the host reorders its disks. A lost disk (lost
// is its name as made) has no name and the disks after it move up (sdb
// becomes sda), as the kernel names the disks it finds.
func (t *Tree) NameDisks(n int, lost string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := make([]string, len(t.disks))
	var present []int
	perKind := map[string]int{}
	for i, d := range t.disks {
		if d.Name == lost {
			continue
		}
		names[i] = DiskName(d.Kind, perKind[d.Kind])
		perKind[d.Kind]++
		present = append(present, i)
	}
	if t.cfg.ReorderDisks && n%2 == 1 {
		for j := 0; j+1 < len(present); j += 2 {
			a, b := present[j], present[j+1]
			names[a], names[b] = names[b], names[a]
		}
	}
	t.names = names
}

// BootDisks are the host's disks as this boot names them, without a lost
// one.
func (t *Tree) BootDisks() []*Disk {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*Disk
	for i, d := range t.disks {
		c := *d
		if i < len(t.names) {
			if t.names[i] == "" {
				continue
			}
			c.Name = t.names[i]
		}
		out = append(out, &c)
	}
	return out
}

// Reset forgets what was made for the host's last init: a new one starts,
// or the host went down. Until the new init has built the host's root,
// /proc/PID/root is the machine's, so nothing is filled (see Built).
func (t *Tree) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pid, t.halted, t.stage = 0, false, 0
	t.dev, t.sys, t.udev, t.key, t.scan = nil, nil, nil, "", nil
}

// Built says the init pid has built the host's root, with its RAM disk on
// device stage: from now on its /dev, /sys and udev database are filled.
func (t *Tree) Built(pid int, stage uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pid, t.stage = pid, stage
	t.dev, t.sys, t.udev, t.key, t.scan = map[string]entry{}, map[string]entry{}, map[string]entry{}, "", nil
}

// Halt stops the writes: the host is going down.
func (t *Tree) Halt() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.halted = true
}

// Scans is how many times the disks were probed.
func (t *Tree) Scans() int64 { return t.scans.Load() }

// Sync brings the host's /dev in line with its disks, as udev would.
// Unless force, it does nothing when no disk changed since the last time.
func (t *Tree) Sync(ctx context.Context, force bool) error {
	// One sync at a time: the watcher's and a settle's would otherwise
	// race to write /dev, the older probe last.
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	t.mu.Lock()
	pid := t.pid
	t.mu.Unlock()
	if pid == 0 {
		return nil
	}
	loopKey, _ := t.cfg.Loops.scan(force)
	disks := t.BootDisks()
	events := t.cfg.Nodes != nil && !t.unwatched.Load()
	if events {
		t.cfg.Nodes.drain()
	}
	diskKey := diskChangeKey(disks, !events)
	written := t.written.Load()
	key := diskKey + loopKey
	t.mu.Lock()
	if !force && !written && key == t.key {
		t.mu.Unlock()
		return nil
	}
	have, scan := t.dev, t.scan
	t.mu.Unlock()
	if have == nil {
		return nil
	}
	// The disks are probed again (blkid on each disk and partition) after
	// a write to their nodes or a change of their partitions, and at every
	// settle when writes are not watched; not when only the machine's loop
	// devices changed: another fleet's losetup would make every host probe.
	if scan == nil || scan.key != diskKey || written || (force && !events) {
		// Taken before the probe: a write during it is probed next time.
		t.written.Store(false)
		var err error
		if scan, err = scanDisks(ctx, disks, diskKey); err != nil {
			t.written.Store(true)
			return err
		}
		t.scans.Add(1)
		// Kept at once: the writes it took in are not in written any
		// more, whether or not /dev can be brought in line below.
		t.mu.Lock()
		t.scan = scan
		t.mu.Unlock()
	}
	want, db, sysWant := scan.entries()
	t.loopNodes(pid, want, sysWant)
	devDir := fmt.Sprintf("/proc/%d/root/dev", pid)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pid != pid || t.dev == nil || t.halted {
		return nil // rebooting, or the new root is not built yet
	}
	if err := RootBuilt(pid); err != nil {
		return err
	}
	// Allow before the node appears, so a tool that waits for it can open it.
	if err := t.cgroup.AllowOnly(blockRules(want)); err != nil {
		return err
	}
	if err := syncEntries(devDir, want, t.dev); err != nil {
		return err
	}
	if err := syncEntries(fmt.Sprintf("/proc/%d/root/sys", pid), sysWant, t.sys); err != nil {
		return err
	}
	if err := syncEntries(fmt.Sprintf("/proc/%d/root/run/udev/data", pid), db, t.udev); err != nil {
		return err
	}
	// The bound file takes the write in place (no rename: that would undo the bind).
	procPartitions := fmt.Sprintf("/proc/%d/root/proc/partitions", pid)
	if err := os.WriteFile(procPartitions, []byte(partitionsFile(want)), 0o444); err != nil {
		return fmt.Errorf("/proc/partitions: %w", err)
	}
	t.key, t.scan = key, scan
	if events {
		t.watchNodes(devDir, scan)
	}
	return nil
}

// watchNodes watches the host's disk and partition nodes for writes. A
// node new to the watch may have been written already: the next sync
// probes again. t.mu is held.
func (t *Tree) watchNodes(devDir string, scan *diskScan) {
	var paths []string
	for name, e := range scan.nodes {
		if e.link == "" && e.data == "" && !strings.Contains(name, "/") {
			paths = append(paths, filepath.Join(devDir, name))
		}
	}
	added, err := t.cfg.Nodes.watch(t, paths)
	if err != nil {
		t.cfg.Logf("%s: %v: its disks are probed at every settle", t.cfg.Host, err)
		t.unwatched.Store(true)
	}
	if added || err != nil {
		t.written.Store(true)
	}
}

// Watch keeps /dev in sync until ctx ends: a cheap check of the
// partitions and image times every 200 ms, a full rescan when they change.
func (t *Tree) Watch(ctx context.Context) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := t.Sync(ctx, false); err != nil && ctx.Err() == nil {
				t.cfg.Logf("%s: /dev: %v", t.cfg.Host, err)
			}
		}
	}
}

// RootBuilt checks that the init's root is the host's own, with its
// own /dev and its /sys/block masked, before the controller writes there:
// until the init pivots, /proc/PID/root is the machine's root.
func RootBuilt(pid int) error {
	root := fmt.Sprintf("/proc/%d/root", pid)
	var hostRoot, machineRoot, hostDev, machineDev unix.Stat_t
	if err := unix.Stat(root, &hostRoot); err != nil {
		return fmt.Errorf("the host's root: %w", err)
	}
	if err := unix.Stat("/", &machineRoot); err != nil {
		return err
	}
	if hostRoot.Dev == machineRoot.Dev && hostRoot.Ino == machineRoot.Ino {
		return errors.New("the host's root is not built yet")
	}
	if err := unix.Stat(root+"/dev", &hostDev); err != nil {
		return fmt.Errorf("the host's /dev: %w", err)
	}
	if err := unix.Stat("/dev", &machineDev); err != nil {
		return err
	}
	if hostDev.Dev == machineDev.Dev {
		return errors.New("the host's /dev is the machine's")
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(root+"/sys/block", &fs); err != nil {
		return fmt.Errorf("the host's /sys/block: %w", err)
	}
	if fs.Type != unix.TMPFS_MAGIC {
		return errors.New("the host's /sys/block is not masked")
	}
	return nil
}

// CheckDisks checks that the /dev and /sys/block of the host whose init
// is pid show each of its disks, as the kernel's device numbers say.
func (t *Tree) CheckDisks(pid int) error {
	root := fmt.Sprintf("/proc/%d/root", pid)
	for _, d := range t.BootDisks() {
		maj, min, err := DevNum(filepath.Join("/sys/block", filepath.Base(d.Loop)))
		if err != nil {
			return fmt.Errorf("disk %s: %w", d.Name, err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(root+d.Path(), &st); err != nil {
			return fmt.Errorf("no %s in the host: %w", d.Path(), err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != unix.Mkdev(maj, min) {
			return fmt.Errorf("%s in the host is not the disk's block device", d.Path())
		}
		if _, err := os.Stat(root + "/sys/block/" + d.Name + "/dev"); err != nil {
			return fmt.Errorf("no /sys/block/%s in the host: %w", d.Name, err)
		}
	}
	return nil
}

// Confine puts a booting host's init (pid) in its devices cgroup before it
// mounts anything, letting it use its disks, their partitions and the
// devices of extra ("b 7:3"): a disk boot mounts its root before /dev is
// filled.
func (t *Tree) Confine(pid int, extra map[string]bool) error {
	rules := map[string]bool{}
	for _, d := range t.BootDisks() {
		maj, min, err := DevNum(filepath.Join("/sys/block", filepath.Base(d.Loop)))
		if err != nil {
			return err
		}
		rules[fmt.Sprintf("b %d:%d", maj, min)] = true
		parts, _ := Partitions(d.Loop)
		for _, p := range parts {
			rules[fmt.Sprintf("b %d:%d", p.Major, p.Minor)] = true
		}
	}
	for r := range extra {
		rules[r] = true
	}
	t.mu.Lock()
	cgroup := t.cgroup
	t.mu.Unlock()
	if err := cgroup.AllowOnly(rules); err != nil {
		return err
	}
	return cgroup.Add(pid)
}

// Node is a block node of the host's /dev.
type Node struct {
	Name         string
	Major, Minor uint32
}

// Blocks lists the block nodes of the host's /dev that have a capacity
// (not a free loop device), by name.
func (t *Tree) Blocks() []Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Node
	for name, e := range t.dev {
		if e.link == "" && e.major != 0 && e.blocks > 0 && !strings.Contains(name, "/") {
			out = append(out, Node{Name: name, Major: e.major, Minor: e.minor})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// OwnsBlock says whether a device number is one of the block nodes of the
// host's /dev.
func (t *Tree) OwnsBlock(rdev uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.dev {
		if e.link == "" && e.major != 0 && unix.Mkdev(e.major, e.minor) == rdev {
			return true
		}
	}
	return false
}
