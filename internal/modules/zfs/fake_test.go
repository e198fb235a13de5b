package zfs

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs/hostfstest"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/transport"
)

// fakeHost answers the module's probes from a model of a host's disks and
// pools, in the output formats of OpenZFS 2.1 and util-linux that
// testdata/real/ holds samples of. It is for plan-level tests only; the
// module meets real ZFS in zfsvm_test.go.
type fakeHost struct {
	moduletest.Memory                              // what Remember kept
	links             map[string]string            // symlink → canonical device
	devices           map[string]*fakeDevice       // canonical path → device
	imported          map[string]*fakePool         // imported pools by name
	exported          []*fakePool                  // pools `zpool import` offers
	datasets          map[string]map[string]string // dataset → property → raw value
	mounts            map[string][2]string         // target → source, fstype
	byID              bool                         // /dev/disk/by-id exists
	hostid            string
	facts             *facts.Facts
	probes            []string
	runs              []string
	logs              []string
	failOnProbe       string // a probe line prefix that fails as if the host dropped
}

type fakeDevice struct {
	whole      bool
	parent     string
	sig        map[string]string
	mountpoint string
}

type fakePool struct {
	name, id, state, status string
	vdevs                   []topVdev
	props                   map[string]string
}

func newFakeHost() *fakeHost {
	return &fakeHost{
		links:    map[string]string{},
		devices:  map[string]*fakeDevice{},
		imported: map[string]*fakePool{},
		datasets: map[string]map[string]string{},
		mounts:   map[string][2]string{},
		hostid:   "8425e349",
		facts:    &facts.Facts{},
	}
}

// disk adds a whole disk and its partitions (numbers 1..parts), with
// by-id links when id is not empty.
func (h *fakeHost) disk(dev, id string, parts int) *fakeHost {
	h.devices[dev] = &fakeDevice{whole: true, sig: map[string]string{}}
	fd := facts.Disk{Path: dev}
	if id != "" {
		h.links["/dev/disk/by-id/"+id] = dev
		h.byID = true
		fd.ByID = []string{"/dev/disk/by-id/" + id}
	}
	for n := 1; n <= parts; n++ {
		p := partitionPath(dev, n)
		h.devices[p] = &fakeDevice{parent: dev, sig: map[string]string{}}
		if id != "" {
			h.links["/dev/disk/by-id/"+id+"-part"+fmt.Sprint(n)] = p
		}
		fd.Partitions = append(fd.Partitions, facts.Partition{Path: p, Number: n})
	}
	if parts > 0 {
		h.devices[dev].sig["PTTYPE"] = "gpt"
	}
	h.facts.Disks = append(h.facts.Disks, fd)
	return h
}

func (h *fakeHost) canon(p string) string {
	if c, ok := h.links[p]; ok {
		return c
	}
	return path.Clean(p)
}

// pool imports a pool with its root dataset.
func (h *fakeHost) pool(name string, vdevs []topVdev, altroot string) *fakeHost {
	h.imported[name] = &fakePool{name: name, state: "ONLINE", vdevs: vdevs, props: map[string]string{"ashift": "12", "altroot": altroot}}
	h.datasets[name] = map[string]string{"mountpoint": "none", "compression": "lz4", "acltype": "posix", "xattr": "sa", "atime": "off", "normalization": "formD", "dnodesize": "auto"}
	for _, v := range vdevs {
		for _, d := range v.devices {
			if dev := h.devices[h.canon(d)]; dev != nil {
				dev.sig = map[string]string{"TYPE": "zfs_member", "LABEL": name}
			}
		}
	}
	return h
}

// offer makes p an exported pool whose devices carry its labels.
func (h *fakeHost) offer(p *fakePool) *fakeHost {
	if p.state == "" {
		p.state = "ONLINE"
	}
	h.exported = append(h.exported, p)
	for _, v := range p.vdevs {
		for _, d := range v.devices {
			if dev := h.devices[h.canon(d)]; dev != nil {
				dev.sig = map[string]string{"TYPE": "zfs_member", "LABEL": p.name, "UUID": p.id}
			}
		}
	}
	return h
}

func (h *fakeHost) Name() string         { return "h1" }
func (h *fakeHost) Reach() modules.Reach { return modules.Reach{Dial: "203.0.113.10"} }
func (h *fakeHost) Facts() *facts.Facts  { return h.facts }
func (h *fakeHost) Log(format string, args ...any) {
	h.logs = append(h.logs, fmt.Sprintf(format, args...))
}
func (h *fakeHost) ReadFile(ctx context.Context, p string) ([]byte, error) {
	return nil, fmt.Errorf("read %s: %w", p, fs.ErrNotExist)
}
func (h *fakeHost) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	return fmt.Errorf("no uploads")
}
func (h *fakeHost) Reconnect(ctx context.Context, opts transport.DialOptions) error { return nil }
func (h *fakeHost) ProbeDial(ctx context.Context, opts transport.DialOptions) error { return nil }
func (h *fakeHost) RefreshFacts(ctx context.Context) error                          { return nil }

func (h *fakeHost) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	line := cmd.Line()
	h.probes = append(h.probes, line)
	if transport.IsMutating(cmd.Args) {
		return transport.Result{ExitCode: -1}, fmt.Errorf("%w: %s", transport.ErrReadOnly, line)
	}
	if h.failOnProbe != "" && strings.HasPrefix(line, h.failOnProbe) {
		return transport.Result{ExitCode: -1}, fmt.Errorf("run %s: %w", line, transport.ErrUnreachable)
	}
	return h.answer(cmd)
}

// Run records commands; Apply's guard probes are answered like probes.
func (h *fakeHost) Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	h.runs = append(h.runs, cmd.Line())
	if cmd.Args[0] == "zfs" && cmd.Args[1] == "list" {
		return h.answer(cmd)
	}
	return transport.Result{}, nil
}

func result(cmd transport.Cmd, code int, stdout, stderr string) (transport.Result, error) {
	res := transport.Result{ExitCode: code, Stdout: []byte(stdout), Stderr: []byte(stderr)}
	if code != 0 {
		return res, transport.NewExitError(cmd, res)
	}
	return res, nil
}

func (h *fakeHost) answer(cmd transport.Cmd) (transport.Result, error) {
	a := cmd.Args
	last := a[len(a)-1]
	switch {
	case a[0] == "zpool" && a[1] == "list":
		var names []string
		for n := range h.imported {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) == 0 {
			return result(cmd, 0, "no pools available\n", "")
		}
		return result(cmd, 0, strings.Join(names, "\n")+"\n", "")
	case a[0] == "zpool" && a[1] == "status":
		p := h.imported[last]
		if p == nil {
			return result(cmd, 1, "", fmt.Sprintf("cannot open '%s': no such pool\n", last))
		}
		return result(cmd, 0, h.status(p), "")
	case a[0] == "zpool" && a[1] == "get":
		p := h.imported[last]
		var b strings.Builder
		for _, k := range strings.Split(a[len(a)-2], ",") {
			v, ok := p.props[k]
			if !ok {
				v = "-"
			}
			fmt.Fprintf(&b, "%s\t%s\n", k, v)
		}
		return result(cmd, 0, b.String(), "")
	case a[0] == "zpool" && a[1] == "import":
		if len(h.exported) == 0 {
			return result(cmd, 1, "", "no pools available to import\n")
		}
		var b strings.Builder
		for _, p := range h.exported {
			b.WriteString(h.importListing(p))
		}
		return result(cmd, 0, b.String(), "")
	case a[0] == "zfs" && a[1] == "list" && len(a) > 5 && a[5] == "-r":
		var names []string
		for n := range h.datasets {
			if n == last || strings.HasPrefix(n, last+"/") {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		return result(cmd, 0, strings.Join(names, "\n")+"\n", "")
	case a[0] == "zfs" && a[1] == "list":
		if _, ok := h.datasets[last]; !ok {
			return result(cmd, 1, "", fmt.Sprintf("cannot open '%s': dataset does not exist\n", last))
		}
		return result(cmd, 0, last+"\n", "")
	case a[0] == "zfs" && a[1] == "get":
		props := h.datasets[last]
		var b strings.Builder
		for _, k := range strings.Split(a[len(a)-2], ",") {
			v, ok := props[k]
			if !ok {
				v = "-"
			}
			fmt.Fprintf(&b, "%s\t%s\n", k, v)
		}
		return result(cmd, 0, b.String(), "")
	case a[0] == "readlink":
		var b strings.Builder
		for _, p := range a[3:] {
			b.WriteString(h.canon(p) + "\n")
		}
		return result(cmd, 0, b.String(), "")
	case a[0] == "lsblk":
		dev := h.canon(last)
		d := h.devices[dev]
		if d == nil {
			return result(cmd, 32, "", fmt.Sprintf("lsblk: %s: not a block device\n", last))
		}
		var b strings.Builder
		typ := map[bool]string{true: "disk", false: "part"}
		if slices.Contains(a, "-d") {
			return result(cmd, 0, typ[d.whole]+"\n", "")
		}
		fmt.Fprintf(&b, "%s %s %s\n", dev, typ[d.whole], d.mountpoint)
		if d.whole {
			var parts []string
			for p, pd := range h.devices {
				if pd.parent == dev {
					parts = append(parts, p)
				}
			}
			sort.Strings(parts)
			for _, p := range parts {
				fmt.Fprintf(&b, "%s part %s\n", p, h.devices[p].mountpoint)
			}
		}
		return result(cmd, 0, b.String(), "")
	case a[0] == "blkid":
		d := h.devices[h.canon(last)]
		if d == nil {
			return result(cmd, 2, "", "")
		}
		if d.sig["AMBIVALENT"] != "" {
			return result(cmd, 8, "", last+": ambivalent result (probably more filesystems on the device, use wipefs(8) to see more details)\n")
		}
		if len(d.sig) == 0 {
			return result(cmd, 2, "", "")
		}
		var b strings.Builder
		for _, k := range sortedKeys(d.sig) {
			fmt.Fprintf(&b, "%s=%s\n", k, d.sig[k])
		}
		return result(cmd, 0, b.String(), "")
	case a[0] == "findmnt":
		var mounts []hostfs.MountState
		for target, m := range h.mounts {
			mounts = append(mounts, hostfs.MountState{Target: target, Source: m[0], FSType: m[1]})
		}
		return result(cmd, 0, string(hostfstest.FindmntOutput(mounts)), "")
	case a[0] == "test":
		if last == byIDDir && h.byID {
			return result(cmd, 0, "", "")
		}
		return result(cmd, 1, "", "")
	case a[0] == "hostid":
		return result(cmd, 0, h.hostid+"\n", "")
	}
	return result(cmd, 127, "", "fake: unknown command "+cmd.Line())
}

func (h *fakeHost) config(p *fakePool, indent string, full bool, states bool) string {
	var b strings.Builder
	col := func(depth int, name, rest string) {
		fmt.Fprintf(&b, "%s%s%-*s  %s\n", indent, strings.Repeat("  ", depth), 20-2*depth, name, rest)
	}
	state := "ONLINE"
	counters := "       0     0     0"
	if !states {
		counters = ""
	}
	col(0, p.name, state+counters)
	for i, v := range p.vdevs {
		depth := 1
		if v.kind != "" {
			col(1, fmt.Sprintf("%s-%d", v.kind, i), state+counters)
			depth = 2
		}
		for _, d := range v.devices {
			if !full {
				d = path.Base(d) // as zpool import shows them
			}
			col(depth, d, state+counters)
		}
	}
	return b.String()
}

func (h *fakeHost) status(p *fakePool) string {
	return fmt.Sprintf("  pool: %s\n state: ONLINE\nconfig:\n\n\tNAME                  STATE     READ WRITE CKSUM\n%s\nerrors: No known data errors\n",
		p.name, h.config(p, "\t", true, true))
}

func (h *fakeHost) importListing(p *fakePool) string {
	status := ""
	action := " action: The pool can be imported using its name or numeric identifier.\n"
	if p.status != "" {
		status = " status: " + p.status + "\n"
		action = " action: The pool can be imported using its name or numeric identifier and\n\tthe '-f' flag.\n"
	}
	return fmt.Sprintf("   pool: %s\n     id: %s\n  state: %s\n%s%s config:\n\n%s\n", p.name, p.id, p.state, status, action, h.config(p, "\t", false, false))
}

var _ modules.Host = (*fakeHost)(nil)
