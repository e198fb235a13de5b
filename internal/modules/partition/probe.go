package partition

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/disk"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/transport"
)

// Probes read the disks as they are now, not as facts found them at the
// start of the play: a task before this one (or this one, on a rerun) may
// have changed them. blkid -p reads the devices themselves, not udev's
// cache, so it sees what a half-finished run left behind.
var (
	lsblkColumns = "NAME,SIZE,TYPE,MOUNTPOINT,MAJ:MIN"
)

// devState is a disk or partition as the host shows it now.
type devState struct {
	Path   string // /dev/sda1
	MajMin string
	Bytes  int64

	// From blkid -p.
	PTType     string // dos, gpt
	PTUUID     string // the partition table's id, new with every table
	FSType     string // ext4, swap, zfs_member, linux_raid_member, ...
	Label      string
	Ambivalent string // blkid's complaint when it found several signatures
	Number     int
	Start      int64 // in 512-byte sectors
	Sectors    int64
	PartName   string
	PartType   string // GUID on gpt, 0x83 on msdos
	PartFlags  string // 0x80 for an msdos boot partition

	// Use by the running system.
	Mounts  []string
	Swap    bool
	Holders []string // md127 (raid1), dm-0 (crypt)
	Pool    string   // an imported ZFS pool it belongs to
}

// blank reports a device with no signature at all.
func (d *devState) blank() bool {
	return d.PTType == "" && d.FSType == "" && d.Ambivalent == ""
}

// uses lists how the running system uses the device.
func (d *devState) uses() []string {
	var out []string
	for _, m := range d.Mounts {
		out = append(out, "mounted at "+m)
	}
	if d.Swap {
		out = append(out, "active swap")
	}
	for _, h := range d.Holders {
		out = append(out, "held by "+h)
	}
	if d.Pool != "" {
		out = append(out, "in the imported ZFS pool "+d.Pool)
	}
	return out
}

// diskState is one disk with its partitions.
type diskState struct {
	Given string // as the task names it
	devState
	Parts []devState
}

// hostState is what Check found on the host.
type hostState struct {
	disks  []*diskState
	mounts []hostfs.MountState
}

// topMount is what a path shows now: the last mount on it.
func (s *hostState) topMount(target string) *hostfs.MountState {
	for i := len(s.mounts) - 1; i >= 0; i-- {
		if s.mounts[i].Target == target {
			return &s.mounts[i]
		}
	}
	return nil
}

// probe reads the state of the task's disks.
func probe(ctx context.Context, h modules.ReadOnlyHost, disks []string) (*hostState, error) {
	st := &hostState{}
	var all []*devState
	for _, given := range disks {
		d, err := probeLsblk(ctx, h, given)
		if err != nil {
			return nil, err
		}
		for _, o := range st.disks {
			if o.Path == d.Path {
				return nil, fmt.Errorf("disks %s and %s are the same disk, %s", o.Given, given, d.Path)
			}
		}
		st.disks = append(st.disks, d)
		all = append(all, &d.devState)
		for i := range d.Parts {
			all = append(all, &d.Parts[i])
		}
	}
	if err := probeBlkid(ctx, h, all); err != nil {
		return nil, err
	}

	mounts, err := hostfs.Mounts(ctx, h)
	if err != nil {
		return nil, err
	}
	st.mounts = mounts
	for _, d := range all {
		for _, m := range st.mounts {
			if m.MajMin == d.MajMin && !contains(d.Mounts, m.Target) {
				d.Mounts = append(d.Mounts, m.Target)
			}
		}
	}

	swaps, err := h.ReadFile(ctx, "/proc/swaps")
	if err != nil {
		return nil, fmt.Errorf("list swaps: %w", err)
	}
	for _, dev := range parseSwaps(swaps) {
		for _, d := range all {
			if d.Path == dev {
				d.Swap = true
			}
		}
	}

	var members []*devState
	for _, d := range all {
		if d.FSType == "zfs_member" {
			members = append(members, d)
		}
	}
	if len(members) > 0 {
		pools, err := importedPools(ctx, h)
		if err != nil {
			return nil, err
		}
		for _, d := range members {
			if contains(pools, d.Label) {
				d.Pool = d.Label
			}
		}
	}
	return st, nil
}

type lsblkDev struct {
	Name       string     `json:"name"`
	Size       flexInt    `json:"size"`
	Type       string     `json:"type"`
	Mountpoint string     `json:"mountpoint"`
	MajMin     string     `json:"maj:min"`
	Children   []lsblkDev `json:"children"`
}

// flexInt reads numbers old lsblk versions print as strings.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	*n = flexInt(v)
	return err
}

// probeLsblk finds the disk's kernel name, size and partitions, and what
// holds them (md, dm), through lsblk, which follows by-id links itself.
func probeLsblk(ctx context.Context, h modules.ReadOnlyHost, given string) (*diskState, error) {
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"lsblk", "-J", "-b", "-o", lsblkColumns, given}})
	if err != nil {
		var exit *transport.ExitError
		if errors.As(err, &exit) {
			return nil, fmt.Errorf("no disk %s (%s); the host has %s", given, strings.TrimSpace(string(res.Stderr)), disk.Describe(h.Facts()))
		}
		return nil, fmt.Errorf("lsblk %s: %w", given, err)
	}
	return parseLsblk(given, res.Stdout)
}

func parseLsblk(given string, out []byte) (*diskState, error) {
	var doc struct {
		BlockDevices []lsblkDev `json:"blockdevices"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("lsblk %s output: %w", given, err)
	}
	if len(doc.BlockDevices) != 1 {
		return nil, fmt.Errorf("lsblk %s listed %d devices", given, len(doc.BlockDevices))
	}
	b := doc.BlockDevices[0]
	switch b.Type {
	case "disk", "loop":
	default:
		return nil, fmt.Errorf("%s is a %s, not a whole disk", given, b.Type)
	}
	d := &diskState{Given: given, devState: devState{Path: "/dev/" + b.Name, MajMin: b.MajMin, Bytes: int64(b.Size)}}
	addUse(&d.devState, b.Mountpoint)
	for _, c := range b.Children {
		if c.Type != "part" {
			d.Holders = append(d.Holders, holder(c))
			continue
		}
		p := devState{Path: "/dev/" + c.Name, MajMin: c.MajMin, Bytes: int64(c.Size)}
		addUse(&p, c.Mountpoint)
		for _, gc := range c.Children {
			p.Holders = append(p.Holders, holder(gc))
		}
		d.Parts = append(d.Parts, p)
	}
	// lsblk lists them as sysfs does, which is not always by number.
	slices.SortStableFunc(d.Parts, func(a, b devState) int {
		return cmp.Or(cmp.Compare(len(a.Path), len(b.Path)), cmp.Compare(a.Path, b.Path))
	})
	return d, nil
}

func holder(c lsblkDev) string { return fmt.Sprintf("%s (%s)", c.Name, c.Type) }

func addUse(d *devState, mountpoint string) {
	switch mountpoint {
	case "":
	case "[SWAP]":
		d.Swap = true
	default:
		d.Mounts = append(d.Mounts, mountpoint)
	}
}

// probeBlkid reads every signature and partition entry of devs in one call.
// blkid exits 2 when it found nothing on any device, and non-zero when one
// device holds signatures it cannot tell apart; such a device then has no
// block in the output.
func probeBlkid(ctx context.Context, h modules.ReadOnlyHost, devs []*devState) error {
	argv := []string{"blkid", "-p", "-o", "export"}
	for _, d := range devs {
		argv = append(argv, d.Path)
	}
	res, err := h.Probe(ctx, transport.Cmd{Args: argv})
	var exit *transport.ExitError
	if err != nil && !errors.As(err, &exit) {
		return fmt.Errorf("blkid: %w", err)
	}
	blocks := parseBlkid(res.Stdout)
	for _, d := range devs {
		kv, ok := blocks[d.Path]
		if !ok {
			if err != nil && res.ExitCode != 2 {
				d.Ambivalent = blkidComplaint(res.Stderr, d.Path)
			}
			continue
		}
		d.PTType = kv["PTTYPE"]
		d.PTUUID = strings.ToLower(kv["PTUUID"])
		d.FSType = kv["TYPE"]
		d.Label = kv["LABEL"]
		d.PartName = kv["PART_ENTRY_NAME"]
		d.PartType = strings.ToLower(kv["PART_ENTRY_TYPE"])
		d.PartFlags = kv["PART_ENTRY_FLAGS"]
		d.Number, _ = strconv.Atoi(kv["PART_ENTRY_NUMBER"])
		d.Start, _ = strconv.ParseInt(kv["PART_ENTRY_OFFSET"], 10, 64)
		d.Sectors, _ = strconv.ParseInt(kv["PART_ENTRY_SIZE"], 10, 64)
	}
	return nil
}

// blkidComplaint finds what blkid said about dev, or says something useful.
func blkidComplaint(stderr []byte, dev string) string {
	for _, line := range strings.Split(string(stderr), "\n") {
		if strings.Contains(line, dev) {
			return strings.TrimSpace(line)
		}
	}
	return "signatures blkid cannot tell apart (see wipefs -n " + dev + ")"
}

// parseBlkid reads `blkid -o export` blocks keyed by DEVNAME.
func parseBlkid(out []byte) map[string]map[string]string {
	blocks := map[string]map[string]string{}
	cur := map[string]string{}
	flush := func() {
		if dev := cur["DEVNAME"]; dev != "" {
			blocks[dev] = cur
		}
		cur = map[string]string{}
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			flush()
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			cur[k] = unescapeExport(v)
		}
	}
	flush()
	return blocks
}

// unescapeExport undoes blkid's shell escaping of export values (a
// backslash before spaces and other special characters).
func unescapeExport(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// parseSwaps lists the devices of /proc/swaps.
func parseSwaps(data []byte) []string {
	var out []string
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 {
			continue
		}
		out = append(out, f[0])
	}
	return out
}

// importedPools lists the ZFS pools the kernel has imported, from the SPL
// kstat tree (without the zpool command, which a read-only probe may not
// run). No ZFS module loaded means no pools.
func importedPools(ctx context.Context, h modules.ReadOnlyHost) ([]string, error) {
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"ls", "-1p", "/proc/spl/kstat/zfs"}})
	if err != nil {
		var exit *transport.ExitError
		if errors.As(err, &exit) {
			return nil, nil
		}
		return nil, fmt.Errorf("list ZFS pools: %w", err)
	}
	// Every imported pool has a directory there; the other entries are
	// files of global statistics.
	var pools []string
	for _, f := range strings.Fields(string(res.Stdout)) {
		if name, ok := strings.CutSuffix(f, "/"); ok {
			pools = append(pools, name)
		}
	}
	return pools, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
