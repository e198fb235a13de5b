package devtree

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// NodeWatch learns that something wrote to a host's disk the way udev
// does: an inotify watch on each disk and partition node in the host's
// /dev (udev's "watch" option of block devices). Until the write, the
// disks' last probe holds, so `udevadm settle`, which libparted runs
// several times for one parted command, no longer runs blkid on every disk
// and partition each time, nor does a write to a mounted file system. Such
// a write changes no signature blkid reads, and udev does not see it either.
type NodeWatch struct {
	mu    sync.Mutex
	fd    int // -1 once closed
	trees map[int32]*Tree
}

func NewNodeWatch() (*NodeWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	return &NodeWatch{fd: fd, trees: map[int32]*Tree{}}, nil
}

// nodeWrites are the events that mean a write: IN_MODIFY as it happens,
// IN_CLOSE_WRITE (udev's own) for writers without write(2), such as an
// ioctl that discards.
const nodeWrites = unix.IN_MODIFY | unix.IN_CLOSE_WRITE

// watch adds the nodes (paths on the machine, through /proc/PID/root) to
// the tree's watches. It says whether one was new to it: what was written
// before the watch began is unknown, so the caller probes again.
func (w *NodeWatch) watch(t *Tree, paths []string) (added bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd < 0 {
		return false, errors.New("the fleet is down")
	}
	for _, p := range paths {
		wd, err := unix.InotifyAddWatch(w.fd, p, nodeWrites)
		if err != nil {
			return added, fmt.Errorf("watch %s: %w", p, err)
		}
		if w.trees[int32(wd)] != t {
			w.trees[int32(wd)] = t
			added = true
		}
	}
	return added, nil
}

// drain hands the queued events to their trees (Tree.written). It runs
// before each decision to probe: the event of a write is queued before the
// writer's close returns, so a settle that follows it sees it.
func (w *NodeWatch) drain() {
	w.mu.Lock()
	defer w.mu.Unlock()
	var buf [16 << 10]byte
	for w.fd >= 0 {
		n, err := unix.Read(w.fd, buf[:])
		if err != nil || n <= 0 {
			return // EAGAIN: nothing more queued
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if t := w.trees[ev.Wd]; t != nil && ev.Mask&(nodeWrites|unix.IN_Q_OVERFLOW) != 0 {
				t.written.Store(true)
			}
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				// Events were lost: every host probes again.
				for _, t := range w.trees {
					t.written.Store(true)
				}
			}
			if ev.Mask&unix.IN_IGNORED != 0 {
				// The node is gone (a partition removed, the boot's /dev
				// unmounted).
				delete(w.trees, ev.Wd)
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

// Close stops the watch: the fleet is down.
func (w *NodeWatch) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd >= 0 {
		_ = unix.Close(w.fd)
		w.fd = -1
	}
}
