package partition

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/disk"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs/hostfstest"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/transport"
)

// fakeHost answers the module's probes from a described machine, the way
// lsblk, blkid, findmnt and /proc/swaps would. It is for plan tests; the
// sim tests run the real tools.
type fakeHost struct {
	moduletest.Memory                   // what Remember kept
	atStart           map[string]string // facts.DisksAtStart
	name              string
	firmware          string
	disks             []fakeDisk
	mounts            []hostfs.MountState // besides the partitions' own
	pools             []string
	probes            []string
}

type fakeDisk struct {
	path    string
	bytes   int64
	byID    []string
	pttype  string // gpt, dos
	fstype  string // on the whole disk
	label   string
	holders []string // md127 and the like, on the whole disk
	parts   []fakePart
}

type fakePart struct {
	n                 int
	startMiB, sizeMiB int64
	name              string // GPT name
	ptype             string // type GUID or 0x83
	flags             string
	fstype, label     string
	mount             string
	swap              bool
	holders           []string
}

func (d *fakeDisk) partPath(p fakePart) string { return disk.PartitionPath(d.path, p.n) }

var _ modules.ReadOnlyHost = (*fakeHost)(nil)

func (h *fakeHost) Name() string                   { return h.name }
func (h *fakeHost) Reach() modules.Reach           { return modules.Reach{Dial: "203.0.113.10"} }
func (h *fakeHost) Log(format string, args ...any) {}

func (h *fakeHost) Facts() *facts.Facts {
	f := &facts.Facts{Firmware: h.firmware, DisksAtStart: h.atStart}
	for _, d := range h.disks {
		fd := facts.Disk{Path: d.path, SizeBytes: d.bytes, ByID: d.byID, PartTable: d.pttype}
		for _, p := range d.parts {
			fd.Partitions = append(fd.Partitions, facts.Partition{Path: d.partPath(p), Number: p.n, FSType: p.fstype, Label: p.label})
		}
		f.Disks = append(f.Disks, fd)
	}
	return f
}

func (h *fakeHost) majMin(di, pi int) string { return fmt.Sprintf("%d:%d", 8, di*16+pi) }

func (h *fakeHost) ReadFile(ctx context.Context, p string) ([]byte, error) {
	h.probes = append(h.probes, "read "+p)
	if p != "/proc/swaps" {
		return nil, fmt.Errorf("read %s: %w", p, fs.ErrNotExist)
	}
	var b strings.Builder
	b.WriteString("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
	for _, d := range h.disks {
		for _, p := range d.parts {
			if p.swap {
				fmt.Fprintf(&b, "%-40s partition\t%d\t\t0\t\t-2\n", d.partPath(p), p.sizeMiB*1024)
			}
		}
	}
	return []byte(b.String()), nil
}

func (h *fakeHost) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	line := cmd.Line()
	h.probes = append(h.probes, line)
	if transport.IsMutating(cmd.Args) {
		return transport.Result{ExitCode: -1}, fmt.Errorf("%w: %s", transport.ErrReadOnly, line)
	}
	fail := func(code int, stderr string) (transport.Result, error) {
		res := transport.Result{ExitCode: code, Stderr: []byte(stderr)}
		return res, transport.NewExitError(cmd, res)
	}
	args := cmd.Args
	switch {
	case args[0] == "lsblk":
		return h.lsblk(args[len(args)-1], fail)
	case args[0] == "blkid":
		return h.blkid(args[4:])
	case args[0] == "findmnt":
		return h.findmnt()
	case line == "ls -1p /proc/spl/kstat/zfs":
		if h.pools == nil {
			return fail(2, "ls: cannot access '/proc/spl/kstat/zfs': No such file or directory\n")
		}
		out := "arcstats\ndbufstats\n"
		for _, p := range h.pools {
			out += p + "/\n"
		}
		return transport.Result{Stdout: []byte(out)}, nil
	case line == "test -d /sys/firmware/efi":
		if h.firmware == "uefi" {
			return transport.Result{}, nil
		}
		return fail(1, "")
	}
	return fail(127, "fake: unknown probe "+line)
}

func (h *fakeHost) findDisk(p string) (int, *fakeDisk) {
	for i := range h.disks {
		d := &h.disks[i]
		if d.path == p {
			return i, d
		}
		for _, id := range d.byID {
			if id == p {
				return i, d
			}
		}
	}
	return -1, nil
}

func (h *fakeHost) lsblk(dev string, fail func(int, string) (transport.Result, error)) (transport.Result, error) {
	di, d := h.findDisk(dev)
	if d == nil {
		return fail(32, "lsblk: "+dev+": not a block device\n")
	}
	type node map[string]any
	mp := func(mount string, swap bool) any {
		switch {
		case swap:
			return "[SWAP]"
		case mount != "":
			return mount
		}
		return nil
	}
	top := node{"name": strings.TrimPrefix(d.path, "/dev/"), "size": d.bytes, "type": "disk", "mountpoint": nil, "maj:min": h.majMin(di, 0)}
	var children []node
	for _, p := range d.parts {
		c := node{"name": strings.TrimPrefix(d.partPath(p), "/dev/"), "size": p.sizeMiB * disk.MiB, "type": "part", "mountpoint": mp(p.mount, p.swap), "maj:min": h.majMin(di, p.n)}
		var gc []node
		for _, hd := range p.holders {
			gc = append(gc, node{"name": hd, "size": 1, "type": "raid1", "mountpoint": nil, "maj:min": "9:127"})
		}
		if gc != nil {
			c["children"] = gc
		}
		children = append(children, c)
	}
	for _, hd := range d.holders {
		children = append(children, node{"name": hd, "size": 1, "type": "raid1", "mountpoint": nil, "maj:min": "9:127"})
	}
	if children != nil {
		top["children"] = children
	}
	out, err := json.MarshalIndent(map[string]any{"blockdevices": []node{top}}, "", "   ")
	return transport.Result{Stdout: out}, err
}

func (h *fakeHost) blkid(devs []string) (transport.Result, error) {
	var blocks []string
	for _, dev := range devs {
		for di := range h.disks {
			d := &h.disks[di]
			if dev == d.path {
				var kv []string
				if d.pttype != "" {
					kv = append(kv, "PTUUID=0badcafe", "PTTYPE="+d.pttype)
				}
				if d.fstype != "" {
					kv = append(kv, "LABEL="+d.label, "TYPE="+d.fstype)
				}
				if kv != nil {
					blocks = append(blocks, "DEVNAME="+dev+"\n"+strings.Join(kv, "\n")+"\n")
				}
			}
			for _, p := range d.parts {
				if dev != d.partPath(p) {
					continue
				}
				var kv []string
				if p.fstype != "" {
					if p.label != "" {
						kv = append(kv, "LABEL="+strings.ReplaceAll(p.label, " ", `\ `))
					}
					kv = append(kv, "UUID=0000-1111", "TYPE="+p.fstype)
				}
				scheme := d.pttype
				kv = append(kv, "PART_ENTRY_SCHEME="+scheme)
				if scheme == "gpt" {
					kv = append(kv, "PART_ENTRY_NAME="+p.name)
				}
				ptype := p.ptype
				if ptype == "" {
					ptype = map[string]string{"gpt": "0fc63daf-8483-4772-8e79-3d69d8477de4", "dos": "0x83"}[scheme]
				}
				kv = append(kv, "PART_ENTRY_TYPE="+ptype)
				if p.flags != "" {
					kv = append(kv, "PART_ENTRY_FLAGS="+p.flags)
				}
				kv = append(kv, fmt.Sprintf("PART_ENTRY_NUMBER=%d", p.n),
					fmt.Sprintf("PART_ENTRY_OFFSET=%d", p.startMiB*2048),
					fmt.Sprintf("PART_ENTRY_SIZE=%d", p.sizeMiB*2048),
					fmt.Sprintf("PART_ENTRY_DISK=8:%d", di*16))
				blocks = append(blocks, "DEVNAME="+dev+"\n"+strings.Join(kv, "\n")+"\n")
			}
		}
	}
	if len(blocks) == 0 {
		res := transport.Result{ExitCode: 2}
		return res, transport.NewExitError(transport.Cmd{Args: append([]string{"blkid"}, devs...)}, res)
	}
	return transport.Result{Stdout: []byte(strings.Join(blocks, "\n"))}, nil
}

func (h *fakeHost) findmnt() (transport.Result, error) {
	list := []hostfs.MountState{
		{Target: "/", Source: "rescue:/nfsroot", FSType: "nfs", MajMin: "0:30"},
		{Target: "/mnt", Source: "tmpfs", FSType: "tmpfs", MajMin: "0:31"},
	}
	for di, d := range h.disks {
		for _, p := range d.parts {
			if p.mount != "" {
				list = append(list, hostfs.MountState{Target: p.mount, Source: d.partPath(p), FSType: p.fstype, MajMin: h.majMin(di, p.n)})
			}
		}
	}
	list = append(list, h.mounts...)
	return transport.Result{Stdout: hostfstest.FindmntOutput(list)}, nil
}
