package devtree

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// loopDev is one loop device of the machine.
type loopDev struct {
	name         string // loop7
	major, minor uint32
	bound        bool
}

// maxFreeLoops is how many free loop devices a host sees, as a server's
// /dev has loop0 to loop7.
const maxFreeLoops = 8

// MachineLoops are the machine's loop devices as a fleet's hosts see them:
// one scan, shared by the hosts' watchers, and the fleet's own disks,
// which a host never sees as loop devices.
type MachineLoops struct {
	mu    sync.Mutex
	at    time.Time
	key   string
	loops []loopDev
	nums  map[string][2]uint32 // loop7 -> major, minor (see scan)
	disks map[string]bool      // loop7: a disk of one of the fleet's hosts
}

// NewMachineLoops is a fleet's view of the machine's loop devices, with no
// disk yet.
func NewMachineLoops() *MachineLoops {
	return &MachineLoops{nums: map[string][2]uint32{}, disks: map[string]bool{}}
}

// AddDisk says a loop device (/dev/loop7) is a disk of one of the fleet's
// hosts.
func (m *MachineLoops) AddDisk(loop string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.disks[filepath.Base(loop)] = true
}

func (m *MachineLoops) isDisk(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.disks[name]
}

// scan lists the machine's loop devices, at most every 150 ms.
func (m *MachineLoops) scan(fresh bool) (string, []loopDev) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !fresh && time.Since(m.at) < 150*time.Millisecond {
		return m.key, m.loops
	}
	entries, _ := os.ReadDir("/sys/block")
	sort.Slice(entries, func(i, j int) bool { return loopIndex(entries[i].Name()) < loopIndex(entries[j].Name()) })
	var loops []loopDev
	var key strings.Builder
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "loop") {
			continue
		}
		// A loop device's number never changes (loopN is 7:N shifted by
		// the partition bits), so it is read once: the machine may have
		// hundreds of them, and every host's watcher looks.
		num, ok := m.nums[e.Name()]
		if !ok {
			maj, min, err := DevNum(filepath.Join("/sys/block", e.Name()))
			if err != nil {
				continue
			}
			num = [2]uint32{maj, min}
			m.nums[e.Name()] = num
		}
		maj, min := num[0], num[1]
		l := loopDev{name: e.Name(), major: maj, minor: min, bound: exists(filepath.Join("/sys/block", e.Name(), "loop", "backing_file"))}
		loops = append(loops, l)
		fmt.Fprintf(&key, "%s:%t,", l.name, l.bound)
	}
	m.at, m.key, m.loops = time.Now(), key.String(), loops
	return m.key, loops
}

// backingDev is the device of the file system holding a loop device's
// backing file.
func backingDev(name string) (uint64, error) {
	info, err := loopInfo(name)
	if err != nil {
		return 0, err
	}
	return info.Device, nil
}

// mountDevs are the devices of the file systems mounted in a process's mount
// namespace.
func mountDevs(pid int) map[uint64]bool {
	devs := map[uint64]bool{}
	file, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return devs // the host is going down: nothing is its own
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		maj, min, ok := strings.Cut(fields[2], ":")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(maj, 10, 32)
		b, err2 := strconv.ParseUint(min, 10, 32)
		if err1 == nil && err2 == nil {
			devs[unix.Mkdev(uint32(a), uint32(b))] = true
		}
	}
	return devs
}

// hostLoops are the loop devices a host sees, besides its disks: the free
// ones (so that losetup -f and mount -o loop find a node for what
// loop-control hands out) and those backed by a file of the host's own file
// systems (with their partitions). Other hosts' and the machine's are
// never shown. fresh skips the shared scan's cache.
func (t *Tree) hostLoops(pid int, fresh bool) (free, own []loopDev) {
	_, loops := t.cfg.Loops.scan(fresh)
	var devs map[uint64]bool
	for _, l := range loops {
		if t.cfg.Loops.isDisk(l.name) {
			continue
		}
		if !l.bound {
			// loop-control hands out the lowest free one.
			if len(free) < maxFreeLoops {
				free = append(free, l)
			}
			continue
		}
		if devs == nil {
			// The host's own file systems: not those bound in from the
			// machine (its helper, its control socket).
			devs = mountDevs(pid)
			for d := range mountDevs(os.Getpid()) {
				delete(devs, d)
			}
			devs[t.stageDev()] = true
		}
		if dev, err := backingDev(l.name); err == nil && devs[dev] {
			own = append(own, l)
		}
	}
	sort.Slice(own, func(i, j int) bool { return own[i].minor < own[j].minor })
	return free, own
}

// stageDev is the device files written to the host's root report (the
// overlay's upper layer on its RAM disk), which no mount table shows.
func (t *Tree) stageDev() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stage
}

// loopNodes adds a host's own and free loop devices to its /dev, /sys and
// /proc/partitions entries.
func (t *Tree) loopNodes(pid int, dev, sys map[string]entry) {
	free, own := t.hostLoops(pid, false)
	for _, l := range free {
		dev[l.name] = entry{major: l.major, minor: l.minor}
	}
	for _, l := range own {
		real := "/sys/devices/virtual/block/" + l.name
		dev[l.name] = entry{major: l.major, minor: l.minor, blocks: sysfsKiB(real)}
		sys["block/"+l.name] = entry{link: real}
		sys[fmt.Sprintf("dev/block/%d:%d", l.major, l.minor)] = entry{link: real}
		sys["class/block/"+l.name] = entry{link: real}
		parts, _ := Partitions("/dev/" + l.name)
		for _, p := range parts {
			name := filepath.Base(p.MachinePath)
			dev[name] = entry{major: p.Major, minor: p.Minor, blocks: sysfsKiB(filepath.Join(real, name))}
			sys[fmt.Sprintf("dev/block/%d:%d", p.Major, p.Minor)] = entry{link: real + "/" + name}
			sys["class/block/"+name] = entry{link: real + "/" + name}
		}
	}
}

func loopIndex(name string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(name, "loop"))
	if err != nil {
		return -1
	}
	return n
}

// BoundLoop is a loop device a host set up, with what backs it.
type BoundLoop struct {
	name     string
	dev, ino uint64
}

// OwnLoops are the loop devices the host (its init is pid) set up on its
// own files.
func (t *Tree) OwnLoops(pid int) []BoundLoop {
	// Not the shared scan: it may be older than a loop device the host
	// set up just now.
	_, own := t.hostLoops(pid, true)
	var out []BoundLoop
	for _, l := range own {
		if info, err := loopInfo(l.name); err == nil {
			out = append(out, BoundLoop{name: l.name, dev: info.Device, ino: info.Inode})
		}
	}
	return out
}

func loopInfo(name string) (*unix.LoopInfo64, error) {
	fd, err := unix.Open("/dev/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return unix.IoctlLoopGetStatus64(fd)
}

// DetachLoops frees the loop devices a host left bound, as its reboot would:
// only those still backed by the same file.
func DetachLoops(loops []BoundLoop) {
	for _, l := range loops {
		info, err := loopInfo(l.name)
		if err != nil || info.Device != l.dev || info.Inode != l.ino {
			continue
		}
		if fd, err := unix.Open("/dev/"+l.name, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			_ = unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
			unix.Close(fd)
		}
	}
}
