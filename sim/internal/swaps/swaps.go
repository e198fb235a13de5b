// Package swaps simulates a host's swap: the machine's kernel keeps one
// swap list for the whole machine, so each simulated host has its own
// (Emulator), with util-linux's swapon and swapoff to change it.
package swaps

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nixbook/nixbook/sim/hostinit"
)

// A host's swap is simulated: the machine's kernel keeps one swap list for
// the whole machine, so a real swapon inside a host would show in every
// host's /proc/swaps (mkswap elsewhere then refuses a device of the same
// name) and pin the host's loop device after the fleet is gone. The
// controller keeps each host's list instead, checks what the kernel would,
// renders the host's own /proc/swaps, and holds the device open
// exclusively, as the kernel does, so mounting, formatting or deleting an
// active swap partition fails as on a server.

// swapArea is one swap area a host turned on.
type swapArea struct {
	path  string // as the host's /proc/swaps names it
	file  bool   // a swap file rather than a block device
	id    string // "b MAJ:MIN" or "f DEV:INO": what the kernel compares
	kib   int64  // usable size
	prio  int
	uuid  string
	label string
	hold  *os.File // kept open while active
}

// hostSwaps is a host's list of active swap areas.
type hostSwaps struct {
	mu sync.Mutex
	// slots keeps freed entries as nil: the kernel reuses the lowest free
	// slot, which orders /proc/swaps.
	slots []*swapArea
	// least is the kernel's least_priority, the last automatic priority;
	// 0 stands for its initial -1.
	least int
}

// active lists the areas in /proc/swaps order. h.swap.mu is held.
func (s *hostSwaps) active() []*swapArea {
	var out []*swapArea
	for _, a := range s.slots {
		if a != nil {
			out = append(out, a)
		}
	}
	return out
}

func (s *hostSwaps) find(id string) (int, *swapArea) {
	for i, a := range s.slots {
		if a != nil && a.id == id {
			return i, a
		}
	}
	return -1, nil
}

// add records an area; a negative prio takes the next automatic one, as
// the kernel gives -2, -3, ... to swaps turned on without a priority.
func (s *hostSwaps) add(a *swapArea, prio int) {
	if prio < 0 {
		if s.least == 0 {
			s.least = -1
		}
		s.least--
		prio = s.least
	}
	a.prio = prio
	for i, old := range s.slots {
		if old == nil {
			s.slots[i] = a
			return
		}
	}
	s.slots = append(s.slots, a)
}

// remove turns off the area in slot i; the areas of lower automatic
// priority move up, as the kernel does.
func (s *hostSwaps) remove(i int) {
	a := s.slots[i]
	s.slots[i] = nil
	if a.hold != nil {
		_ = a.hold.Close()
	}
	if a.prio < 0 {
		for _, o := range s.slots {
			if o != nil && o.prio < a.prio {
				o.prio++
			}
		}
		s.least++
	}
}

// clear forgets every area: the host rebooted.
func (s *hostSwaps) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.slots {
		if a != nil && a.hold != nil {
			_ = a.hold.Close()
		}
	}
	s.slots, s.least = nil, 0
}

// swapsFile renders /proc/swaps as the kernel does.
func swapsFile(areas []*swapArea) string {
	var b strings.Builder
	b.WriteString(hostinit.SwapsHeader)
	tab := func(n int64) string {
		if n < 10000000 {
			return "\t"
		}
		return ""
	}
	for _, a := range areas {
		name := mangleSwapPath(a.path)
		typ := "partition"
		if a.file {
			typ = "file\t"
		}
		fmt.Fprintf(&b, "%s%s%s\t%d\t%s%d\t%s%d\n", name, strings.Repeat(" ", max(40-len(name), 1)), typ, a.kib, tab(a.kib), 0, tab(0), a.prio)
	}
	return b.String()
}

// mangleSwapPath escapes what the kernel escapes in /proc/swaps.
func mangleSwapPath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// writeSwaps writes the host's /proc/swaps. h.swap.mu is held.
func (h *Emulator) writeSwaps() error {
	pid := h.host.PID()
	if pid == 0 {
		return nil
	}
	// The bound file takes the write in place, as /proc/partitions does.
	p := fmt.Sprintf("/proc/%d/root/proc/swaps", pid)
	if err := os.WriteFile(p, []byte(swapsFile(h.swap.active())), 0o444); err != nil {
		return fmt.Errorf("/proc/swaps: %w", err)
	}
	return nil
}

// openInHost opens p (relative to dir) inside the host's root with
// O_PATH: symbolic links, "..", and absolute links resolve inside the host,
// never on the machine.
func (h *Emulator) openInHost(dir, p string) (*os.File, error) {
	pid := h.host.PID()
	if pid == 0 {
		return nil, syscall.ENOENT
	}
	root, err := os.Open(fmt.Sprintf("/proc/%d/root", pid))
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if !path.IsAbs(p) {
		if dir == "" {
			dir = "/"
		}
		p = path.Join(dir, p)
	}
	fd, err := unix.Openat2(int(root.Fd()), p, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), p), nil
}

// reopen opens what an O_PATH file names, for reading or holding.
func reopen(f *os.File, flags int) (*os.File, error) {
	return os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
}

// kernelPath is the name the host's kernel gives an open file: its path in
// the host's mount namespace, symbolic links resolved.
func kernelPath(f *os.File, fallback string) string {
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil || !strings.HasPrefix(p, "/") {
		return path.Clean(fallback)
	}
	return p
}

// Block is a block device the host has a node for.
type Block struct {
	Name         string // sda2, inside the host
	Major, Minor uint32
}

// machineDevPath is the machine's node of a block device.
func machineDevPath(major, minor uint32) (string, error) {
	target, err := os.Readlink(fmt.Sprintf("/sys/dev/block/%d:%d", major, minor))
	if err != nil {
		return "", err
	}
	return "/dev/" + filepath.Base(target), nil
}

// parseTag splits LABEL=x, UUID=x, PARTLABEL=x and PARTUUID=x.
func parseTag(spec string) (tag, value string, ok bool) {
	tag, value, ok = strings.Cut(spec, "=")
	switch tag {
	case "LABEL", "UUID", "PARTLABEL", "PARTUUID":
		return tag, strings.Trim(value, `"`), ok
	}
	return "", "", false
}

// findTag finds the host's device with a tag, as libblkid does from
// udev's links or by probing: "" when none has it.
func (h *Emulator) findTag(ctx context.Context, tag, value string) string {
	key := map[string]string{
		"LABEL": "ID_FS_LABEL_ENC", "UUID": "ID_FS_UUID_ENC",
		"PARTLABEL": "ID_PART_ENTRY_NAME", "PARTUUID": "ID_PART_ENTRY_UUID",
	}[tag]
	for _, b := range h.host.Blocks() {
		dev, err := machineDevPath(b.Major, b.Minor)
		if err != nil {
			continue
		}
		got := decodeUdev(h.host.Probe(ctx, dev)[key])
		if got == value || (strings.HasSuffix(tag, "UUID") && strings.EqualFold(got, value) && got != "") {
			return "/dev/" + b.Name
		}
	}
	return ""
}

// decodeUdev undoes udev's \xNN encoding of a property value.
func decodeUdev(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if n, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// swapHeader is what a swap area's first page says about it.
type swapHeader struct {
	pageSize int
	version  uint32
	lastPage uint32
	badPages uint32
	uuid     string
	label    string
}

// readSwapHeader finds the swap signature at the end of the first page
// (of any page size util-linux knows) and reads the header before it.
func readSwapHeader(r io.ReaderAt) (*swapHeader, bool) {
	buf := make([]byte, 64<<10)
	n, err := r.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false
	}
	buf = buf[:n]
	const magic = "SWAPSPACE2"
	for page := 4096; page <= 64<<10; page <<= 1 {
		if page == 32<<10 {
			continue // util-linux skips it
		}
		if len(buf) < page {
			break
		}
		if string(buf[page-len(magic):page]) != magic {
			continue
		}
		order := binary.ByteOrder(binary.LittleEndian)
		if order.Uint32(buf[1024:]) != 1 && binary.BigEndian.Uint32(buf[1024:]) == 1 {
			order = binary.BigEndian
		}
		hdr := &swapHeader{
			pageSize: page,
			version:  order.Uint32(buf[1024:]),
			lastPage: order.Uint32(buf[1028:]),
			badPages: order.Uint32(buf[1032:]),
		}
		if u := buf[1036:1052]; string(u) != string(make([]byte, 16)) {
			hdr.uuid = fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
		}
		label := buf[1052:1068]
		if i := strings.IndexByte(string(label), 0); i >= 0 {
			label = label[:i]
		}
		hdr.label = string(label)
		return hdr, true
	}
	return nil, false
}

// readHostFile reads a regular file of the host.
func (h *Emulator) readHostFile(p string) ([]byte, error) {
	f, err := h.openInHost("/", p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	r, err := reopen(f, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, 1<<20))
}

// fileID is what the kernel compares to tell swap areas apart: the device
// for a block device, the inode for a file.
func fileID(f *os.File) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return ""
	}
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		return fmt.Sprintf("b %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return fmt.Sprintf("f %d:%d", st.Dev, st.Ino)
}

// swapOn does what swapon(8) and then swapon(2) do for one area: spec is
// the path inside the host, shown is how messages name it.
func (h *Emulator) swapOn(ctx context.Context, o *swapOutput, dir, spec, shown string, so swapOptions) bool {
	if so.verbose {
		fmt.Fprintf(&o.stdout, "swapon %s\n", shown)
	}
	f, err := h.openInHost(dir, spec)
	if err != nil {
		o.warnf("cannot open %s: %s", spec, Strerror(err))
		return false
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		o.warnf("stat of %s failed: %s", spec, Strerror(err))
		return false
	}
	kind := st.Mode & unix.S_IFMT
	block, regular := kind == unix.S_IFBLK, kind == unix.S_IFREG
	if block && !h.host.OwnsBlock(st.Rdev) {
		// The host's devices cgroup would refuse to open it.
		o.warnf("cannot open %s: %s", spec, Strerror(syscall.EPERM))
		return false
	}
	permMask := uint32(0o7077)
	if block {
		permMask = 0o7007
	}
	if st.Mode&permMask != 0 {
		o.warnf("%s: insecure permissions %04o, %04o suggested.", spec, st.Mode&0o7777, ^permMask&0o666)
	}
	if regular && st.Uid != 0 {
		o.warnf("%s: insecure file owner %d, 0 (root) suggested.", spec, st.Uid)
	}
	if regular && st.Blocks*512 < st.Size {
		o.warnf("%s: skipping - it appears to have holes.", spec)
		return false
	}
	if !block && !regular {
		// A directory or a character device reads as no header at all.
		o.warnf("%s: read swap header failed", spec)
		return false
	}
	r, err := reopen(f, os.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		o.warnf("cannot open %s: %s", spec, Strerror(err))
		return false
	}
	defer r.Close()
	size := st.Size
	if block {
		if size, err = r.Seek(0, io.SeekEnd); err != nil {
			o.warnf("%s: get size failed", spec)
			return false
		}
	}
	hdr, ok := readSwapHeader(r)
	if !ok {
		o.warnf("%s: read swap header failed", spec)
		return false
	}
	pageSize := os.Getpagesize()
	if hdr.pageSize != pageSize && int64(hdr.lastPage+1)*int64(hdr.pageSize) <= size {
		o.warnf("%s: swap format pagesize does not match. (Use --fixpgsz to reinitialize it.)", spec)
	}
	// What the kernel checks.
	fail := func(errno syscall.Errno) bool {
		o.warnf("%s: swapon failed: %s", shown, Strerror(errno))
		return false
	}
	id := fileID(f)
	h.swap.mu.Lock()
	defer h.swap.mu.Unlock()
	// A host going down has let its swaps go already (stopLocked clears
	// them after it marks the host stopping): nothing may be added back.
	if h.host.Stopping() {
		return fail(syscall.ENODEV)
	}
	if _, on := h.swap.find(id); on != nil {
		return fail(syscall.EBUSY)
	}
	pages := uint64(size) / uint64(pageSize)
	if hdr.pageSize != pageSize || hdr.version != 1 || hdr.lastPage == 0 || uint64(hdr.lastPage)+1 > pages || hdr.badPages >= hdr.lastPage {
		return fail(syscall.EINVAL)
	}
	if regular {
		// tmpfs and overlayfs cannot hold swap files.
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(int(r.Fd()), &sfs); err == nil && (sfs.Type == unix.TMPFS_MAGIC || sfs.Type == unix.OVERLAYFS_SUPER_MAGIC) {
			return fail(syscall.EINVAL)
		}
	}
	holdFlags := os.O_RDONLY
	if block {
		holdFlags |= unix.O_EXCL // claimed, as the kernel claims a swap device
	}
	hold, err := reopen(f, holdFlags)
	if err != nil {
		var errno syscall.Errno
		if !errors.As(err, &errno) {
			errno = syscall.EINVAL
		}
		return fail(errno)
	}
	shownPath := spec
	if !path.IsAbs(spec) {
		shownPath = path.Join(dir, spec)
	}
	a := &swapArea{
		path: kernelPath(f, shownPath), file: regular, id: id,
		kib:  int64(hdr.lastPage-hdr.badPages) * int64(pageSize/1024),
		uuid: hdr.uuid, label: hdr.label, hold: hold,
	}
	prio := so.prio
	if prio > 32767 {
		prio = 32767
	}
	h.swap.add(a, prio)
	if err := h.writeSwaps(); err != nil {
		h.host.Logf("%v", err)
	}
	return true
}
