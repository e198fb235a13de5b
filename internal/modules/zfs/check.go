package zfs

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/transport"
)

// byIDDir is where pools are searched for and imported from, when the host
// has it: by-id names survive disk reordering, and NixOS imports from there.
const byIDDir = "/dev/disk/by-id"

// oneTime lists dataset properties that can only be set at creation.
var oneTime = []string{"normalization", "utf8only", "casesensitivity", "encryption", "keyformat", "pbkdf2iters", "volblocksize"}

// step is what Apply runs for one change.
type step struct {
	cmds []transport.Cmd
	// skipIfDataset names a dataset whose existence makes the step
	// unnecessary. Only datasets of a pool that Check found exported carry
	// it: Check cannot look inside such a pool, Apply can once it is imported.
	skipIfDataset string
}

// builder collects the plan's changes and their steps side by side.
type builder struct {
	changes []modules.Change
	steps   []step
}

func (b *builder) add(c modules.Change, s step) {
	b.changes = append(b.changes, c)
	b.steps = append(b.steps, s)
}

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	c := m.cfg
	pr := prober{h: h}
	imported, err := pr.importedPools(ctx)
	if err != nil {
		return nil, err
	}
	b := &builder{}
	st := poolState{imported: slices.Contains(imported, c.pool)}
	if c.exported {
		if st.imported {
			ch := modules.Change{Summary: "export pool " + c.pool}
			cmd := ch.Cmd("zpool", "export", c.pool)
			b.add(ch, step{cmds: []transport.Cmd{cmd}})
		}
		st.imported = false
		return m.plan(ctx, pr, b, st), nil
	}

	pending := false // the pool is imported in this plan: its datasets are unknown yet
	switch {
	case st.imported:
		if err := m.checkImported(ctx, pr, b, &st); err != nil {
			return nil, err
		}
	default:
		found, err := m.checkExported(ctx, pr, b, &st, imported)
		if err != nil {
			return nil, err
		}
		pending = found
	}

	existing := map[string]bool{}
	if st.imported {
		names, err := pr.datasets(ctx, c.pool)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			existing[n] = true
		}
	}
	for _, d := range c.datasets {
		if existing[d.name] {
			if err := m.checkProperties(ctx, pr, b, d.name, datasetProps(d), st.altroot); err != nil {
				return nil, err
			}
			continue
		}
		ch := modules.Change{Summary: "create dataset " + d.name + describeDataset(d)}
		args := []string{"zfs", "create", "-p"}
		if d.zfsMounted() {
			args = append(args, "-u") // mounted below, in path order
		}
		for _, kv := range sortedProps(datasetProps(d)) {
			args = append(args, "-o", kv)
		}
		s := step{cmds: []transport.Cmd{ch.Cmd(append(args, d.name)...)}}
		if pending {
			ch.Summary += " unless the imported pool has it"
			s.skipIfDataset = d.name
		}
		b.add(ch, s)
	}

	if err := m.checkMounts(ctx, pr, b, st.imported); err != nil {
		return nil, err
	}
	st.imported = true
	return m.plan(ctx, pr, b, st), nil
}

// poolState is what Check learnt about the pool.
type poolState struct {
	imported bool
	altroot  string    // of an imported pool
	actual   []topVdev // as ZFS reports it, when the pool exists
}

// checkImported compares an imported pool with the task and plans property
// changes.
func (m *module) checkImported(ctx context.Context, pr prober, b *builder, st *poolState) error {
	c := m.cfg
	res, err := pr.probe(ctx, "zpool", "status", "-P", c.pool)
	if err != nil {
		return err
	}
	actual, err := parseConfig(statusConfig(string(res.Stdout)), c.pool)
	if err != nil {
		return fmt.Errorf("read the layout of pool %s: %w", c.pool, err)
	}
	st.actual = actual
	if err := m.sameLayout(ctx, pr, actual); err != nil {
		return err
	}
	props := []string{"ashift", "altroot"}
	for _, k := range sortedKeys(c.props) {
		props = append(props, k)
	}
	res, err = pr.probe(ctx, "zpool", "get", "-H", "-p", "-o", "property,value", strings.Join(props, ","), c.pool)
	if err != nil {
		return err
	}
	got := propertyValues(res.Stdout)
	st.altroot = got["altroot"]
	if st.altroot == "-" {
		st.altroot = ""
	}
	if c.ashift != 0 && got["ashift"] != strconv.Itoa(c.ashift) {
		pr.h.Log("pool %s has ashift=%s, the task asks %d: ashift is fixed when a pool is created, left as it is", c.pool, got["ashift"], c.ashift)
	}
	if c.root != st.altroot {
		pr.h.Log("pool %s is imported with altroot %q, the task's root is %q", c.pool, st.altroot, c.root)
	}
	var set []string
	for _, k := range sortedKeys(c.props) {
		if !sameValue(k, c.props[k], got[k]) {
			set = append(set, k+"="+c.props[k])
		}
	}
	if len(set) > 0 {
		ch := modules.Change{Summary: "set pool properties of " + c.pool + ": " + strings.Join(set, " ")}
		var cmds []transport.Cmd
		for _, kv := range set {
			cmds = append(cmds, ch.Cmd("zpool", "set", kv, c.pool))
		}
		b.add(ch, step{cmds: cmds})
	}
	return m.checkProperties(ctx, pr, b, c.pool, c.rootProps, st.altroot)
}

// checkProperties plans `zfs set` for the properties of an existing dataset
// that differ from the task. One-time properties are only reported.
func (m *module) checkProperties(ctx context.Context, pr prober, b *builder, ds string, want Properties, altroot string) error {
	if len(want) == 0 {
		return nil
	}
	keys := sortedKeys(want)
	res, err := pr.probe(ctx, "zfs", "get", "-H", "-p", "-o", "property,value", strings.Join(keys, ","), ds)
	if err != nil {
		return err
	}
	got := propertyValues(res.Stdout)
	var set, changed []string
	for _, k := range keys {
		w, g := want[k], got[k]
		if k == "mountpoint" && strings.HasPrefix(w, "/") && altroot != "" && g == path.Join(altroot, w) {
			continue
		}
		if sameValue(k, w, g) {
			continue
		}
		if slices.Contains(oneTime, k) {
			pr.h.Log("%s has %s=%s, the task asks %s: it can only be set when the dataset is created, left as it is", ds, k, g, w)
			continue
		}
		set = append(set, k+"="+w)
		changed = append(changed, k)
	}
	if len(set) == 0 {
		return nil
	}
	ch := modules.Change{Summary: "set properties of " + ds + ": " + strings.Join(set, " "), Before: describeProps(changed, got), After: describeProps(changed, want)}
	var cmds []transport.Cmd
	for _, kv := range set {
		cmds = append(cmds, ch.Cmd("zfs", "set", kv, ds))
	}
	b.add(ch, step{cmds: cmds})
	return nil
}

// checkExported plans the import of an exported pool of the task's name, or
// the creation of the pool. It reports whether the pool is imported.
func (m *module) checkExported(ctx context.Context, pr prober, b *builder, st *poolState, imported []string) (bool, error) {
	c := m.cfg
	search := ""
	if pr.exists(ctx, byIDDir) {
		search = byIDDir
	}
	pools, err := pr.importable(ctx, search)
	if err != nil {
		return false, err
	}
	var same []importable
	for _, p := range pools {
		if p.name == c.pool {
			same = append(same, p)
		}
	}
	if len(same) > 1 {
		var ids []string
		for _, p := range same {
			ids = append(ids, p.id)
		}
		return false, fmt.Errorf("%d exported pools are named %s (ids %s): import the right one by id under another name, or destroy the others, then run again", len(same), c.pool, strings.Join(ids, ", "))
	}
	if len(same) == 1 {
		p := same[0]
		if p.state != "ONLINE" && p.state != "DEGRADED" {
			return false, fmt.Errorf("exported pool %s is %s and cannot be imported: %s %s", c.pool, p.state, p.status, p.action)
		}
		actual, err := parseConfig(p.config, c.pool)
		if err != nil {
			return false, fmt.Errorf("read the layout of exported pool %s: %w", c.pool, err)
		}
		st.actual = actual
		if err := m.sameExportedLayout(ctx, pr, actual, p.id); err != nil {
			return false, err
		}
		ch := modules.Change{Summary: "import exported pool " + c.pool + " (" + layoutOf(actual) + ")"}
		args := []string{"zpool", "import", "-N"}
		if c.root != "" {
			args = append(args, "-R", c.root)
		}
		if search != "" {
			args = append(args, "-d", search)
		}
		if strings.Contains(p.status+" "+p.action, "another system") {
			// Last used by the system being replaced: the forced import the
			// installer needs, as disko does.
			args = append(args, "-f")
			ch.Summary += ", last used by another system"
		}
		cmd := ch.Cmd(append(args, c.pool)...)
		b.add(ch, step{cmds: []transport.Cmd{cmd}})
		st.altroot = c.root
		return true, nil
	}
	if !c.hasDevices {
		return false, fmt.Errorf("pool %s is neither imported nor importable, and the task names no devices to create it on", c.pool)
	}
	force, err := m.checkDevices(ctx, pr, b, imported)
	if err != nil {
		return false, err
	}
	ch := modules.Change{Summary: "create pool " + c.pool + " (" + layout(c.vdevs) + ")"}
	args := []string{"zpool", "create"}
	if force {
		args = append(args, "-f")
	}
	if c.ashift != 0 {
		args = append(args, "-o", "ashift="+strconv.Itoa(c.ashift))
	}
	for _, kv := range sortedProps(c.props) {
		args = append(args, "-o", kv)
	}
	for _, kv := range sortedProps(c.rootProps) {
		args = append(args, "-O", kv)
	}
	if c.root != "" {
		args = append(args, "-R", c.root)
	}
	args = append(args, c.pool)
	for _, v := range c.vdevs {
		if v.kind != "" {
			args = append(args, v.kind)
		}
		args = append(args, v.devices...)
	}
	cmd := ch.Cmd(args...)
	b.add(ch, step{cmds: []transport.Cmd{cmd}})
	st.altroot = c.root
	return false, nil
}

// found is what a device holds.
type found struct {
	dev      string
	whole    bool
	sig      map[string]string // blkid -p of the device itself
	children []childSig
}

type childSig struct {
	dev string
	sig map[string]string
}

// checkDevices refuses devices that are missing, in use, or hold other
// data unless the task says wipe, in which case it plans their erasure. It
// reports whether `zpool create` needs -f: a device held something.
func (m *module) checkDevices(ctx context.Context, pr prober, b *builder, imported []string) (bool, error) {
	c := m.cfg
	force := false
	var refused []string
	for _, v := range c.vdevs {
		for _, dev := range v.devices {
			f, err := m.probeDevice(ctx, pr, dev)
			if err != nil {
				return false, err
			}
			if len(f.sig) == 0 && len(f.children) == 0 {
				continue
			}
			force = true
			what, foreign, inUse := m.judge(f, imported)
			if inUse != "" {
				return false, fmt.Errorf("device %s %s; refusing to create pool %s on it even with wipe", dev, inUse, c.pool)
			}
			if !foreign {
				pr.h.Log("device %s holds %s: reused for pool %s", dev, what, c.pool)
				continue
			}
			if !c.wipe {
				refused = append(refused, dev+" holds "+what)
				continue
			}
			ch := modules.Change{Summary: "wipe " + dev + " (" + what + ")"}
			var cmds []transport.Cmd
			for _, child := range f.children {
				if len(child.sig) > 0 {
					cmds = append(cmds, wipeCmd(&ch, child.dev, child.sig))
				}
			}
			if len(f.sig) > 0 {
				cmds = append(cmds, wipeCmd(&ch, dev, f.sig))
			}
			b.add(ch, step{cmds: cmds})
		}
	}
	if len(refused) > 0 {
		return false, fmt.Errorf("refusing to create pool %s over other data: %s; set wipe: true to erase it, or name other devices", c.pool, strings.Join(refused, "; "))
	}
	return force, nil
}

func wipeCmd(ch *modules.Change, dev string, sig map[string]string) transport.Cmd {
	if sig["TYPE"] == "zfs_member" {
		return ch.Cmd("zpool", "labelclear", "-f", dev)
	}
	return ch.Cmd("wipefs", "-a", dev)
}

func (m *module) probeDevice(ctx context.Context, pr prober, dev string) (found, error) {
	f := found{dev: dev}
	res, err := pr.probe(ctx, "lsblk", "-n", "-r", "-p", "-o", "NAME,TYPE,MOUNTPOINT", "--", dev)
	entries := parseLsblk(string(res.Stdout))
	if err != nil || len(entries) == 0 {
		return f, modules.NotYet(fmt.Errorf("device %s not found%s", dev, knownDisks(pr.h)))
	}
	f.whole = entries[0].typ != "part"
	for _, e := range entries {
		if e.mountpoint != "" {
			return f, fmt.Errorf("device %s is in use: %s is mounted at %s; unmount it first", dev, e.name, e.mountpoint)
		}
	}
	if f.sig, err = pr.signature(ctx, dev); err != nil {
		return f, err
	}
	if f.whole {
		for _, e := range entries[1:] {
			if e.typ != "part" {
				continue
			}
			sig, err := pr.signature(ctx, e.name)
			if err != nil {
				return f, err
			}
			f.children = append(f.children, childSig{dev: e.name, sig: sig})
		}
	}
	return f, nil
}

// judge describes what a device holds and whether it is foreign to the
// pool: ZFS labels of the pool itself (a run that stopped half-way, or the
// partitions ZFS made on a whole disk) are not. inUse is set when the
// device belongs to an imported pool.
func (m *module) judge(f found, imported []string) (what string, foreign bool, inUse string) {
	pool := m.cfg.pool
	describe := func(sig map[string]string) (string, bool, string) {
		switch {
		case sig["AMBIVALENT"] != "":
			return "several signatures (see wipefs " + sig["AMBIVALENT"] + ")", true, ""
		case sig["TYPE"] == "zfs_member" && sig["LABEL"] == pool:
			return "a ZFS label of pool " + pool + " that is not importable", false, ""
		case sig["TYPE"] == "zfs_member" && slices.Contains(imported, sig["LABEL"]):
			return "", true, "belongs to the imported pool " + sig["LABEL"]
		case sig["TYPE"] == "zfs_member":
			return "a ZFS label of pool " + sig["LABEL"], true, ""
		case sig["TYPE"] != "":
			usage := sig["USAGE"]
			if usage == "" || usage == "other" {
				usage = "signature"
			}
			d := article(sig["TYPE"]) + " " + sig["TYPE"] + " " + usage
			if sig["LABEL"] != "" {
				d += " labelled " + sig["LABEL"]
			}
			return d, true, ""
		case sig["PTTYPE"] != "":
			return "a " + sig["PTTYPE"] + " partition table", true, ""
		}
		return "nothing", false, ""
	}
	what, foreign, inUse = describe(f.sig)
	if inUse != "" || !f.whole || len(f.children) == 0 {
		return what, foreign, inUse
	}
	ownOnly := true
	var parts []string
	for _, ch := range f.children {
		w, fo, use := describe(ch.sig)
		if use != "" {
			return "", true, ch.dev + " " + use
		}
		if fo {
			ownOnly = false
		}
		if len(ch.sig) > 0 {
			parts = append(parts, path.Base(ch.dev)+": "+w)
		}
	}
	if ownOnly {
		return what + " with partitions ZFS made for pool " + pool, false, ""
	}
	return what + " with partitions (" + strings.Join(parts, ", ") + ")", true, ""
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

// sameLayout refuses a pool whose vdevs differ from the task's.
func (m *module) sameLayout(ctx context.Context, pr prober, actual []topVdev) error {
	c := m.cfg
	if !c.hasDevices {
		return nil
	}
	var all []string
	for _, v := range c.vdevs {
		all = append(all, v.devices...)
	}
	for _, v := range actual {
		all = append(all, v.devices...)
	}
	canon, err := pr.resolve(ctx, all)
	if err != nil {
		return err
	}
	// An asked whole disk shows up as its first partition, which ZFS made.
	match := map[string]string{}
	for _, v := range c.vdevs {
		for _, d := range v.devices {
			match[canon[d]] = d
			match[partitionPath(canon[d], 1)] = d
		}
	}
	sig := func(kind string, devs []string) string {
		s := slices.Clone(devs)
		sort.Strings(s)
		return kind + "(" + strings.Join(s, " ") + ")"
	}
	var want, got []string
	for _, v := range c.vdevs {
		want = append(want, sig(v.kind, v.devices))
	}
	for _, v := range actual {
		var devs []string
		for _, d := range v.devices {
			if asked, ok := match[canon[d]]; ok {
				devs = append(devs, asked)
			} else {
				devs = append(devs, d)
			}
		}
		got = append(got, sig(v.kind, devs))
	}
	sort.Strings(want)
	sort.Strings(got)
	if slices.Equal(want, got) {
		return nil
	}
	return fmt.Errorf("pool %s exists with the layout %s, the task asks %s; change the task, or destroy the pool yourself if its data may go", c.pool, layoutOf(actual), layout(c.vdevs))
}

// sameExportedLayout refuses an exported pool whose vdevs differ from the
// task's. `zpool import` names devices by base name only (and whole disks
// without their partition), so membership is read from the devices' own
// labels instead: each asked device, or the partition ZFS made on an asked
// whole disk, must carry the pool's id.
func (m *module) sameExportedLayout(ctx context.Context, pr prober, actual []topVdev, id string) error {
	c := m.cfg
	if !c.hasDevices {
		return nil
	}
	shape := func(kinds []string, sizes []int) string {
		var s []string
		for i := range kinds {
			s = append(s, fmt.Sprintf("%s:%d", kinds[i], sizes[i]))
		}
		sort.Strings(s)
		return strings.Join(s, " ")
	}
	var wk, gk []string
	var ws, gs []int
	for _, v := range c.vdevs {
		wk, ws = append(wk, v.kind), append(ws, len(v.devices))
	}
	for _, v := range actual {
		gk, gs = append(gk, v.kind), append(gs, len(v.devices))
	}
	mismatch := func(why string) error {
		return fmt.Errorf("exported pool %s (id %s) has the layout %s, the task asks %s%s; change the task, or destroy the pool yourself if its data may go", c.pool, id, layoutOf(actual), layout(c.vdevs), why)
	}
	if shape(wk, ws) != shape(gk, gs) {
		return mismatch("")
	}
	for _, v := range c.vdevs {
		for _, dev := range v.devices {
			res, err := pr.probe(ctx, "lsblk", "-n", "-d", "-r", "-o", "TYPE", "--", dev)
			if err != nil {
				return modules.NotYet(fmt.Errorf("device %s not found%s", dev, knownDisks(pr.h)))
			}
			member := dev
			if strings.TrimSpace(string(res.Stdout)) != "part" {
				member = partitionPath(dev, 1)
			}
			sig, err := pr.signature(ctx, member)
			if err != nil {
				return err
			}
			if sig["TYPE"] != "zfs_member" || sig["UUID"] != id {
				return mismatch(" (" + member + " is not one of its devices)")
			}
		}
	}
	return nil
}

// checkMounts plans the mounts in path order. A path where something else
// is mounted is an error.
func (m *module) checkMounts(ctx context.Context, pr prober, b *builder, poolImported bool) error {
	c := m.cfg
	ms := mountList(c)
	if len(ms) == 0 {
		return nil
	}
	// One listing for all targets: each probe is a round trip.
	mounts, err := pr.mounts(ctx)
	if err != nil {
		return err
	}
	for _, d := range ms {
		target := c.target(d.mount)
		at := hostfs.MountAt(mounts, target)
		source, fstype := at.Source, at.FSType
		switch {
		case source == d.name && fstype == "zfs" && poolImported:
			continue
		case source != "":
			return fmt.Errorf("%s (%s) is mounted at %s, where %s belongs; unmount it first", source, fstype, target, d.name)
		}
		ch := modules.Change{Summary: "mount " + d.name + " at " + target}
		var cmds []transport.Cmd
		if d.zfsMounted() {
			cmds = append(cmds, ch.Cmd("zfs", "mount", d.name))
		} else {
			cmds = append(cmds, ch.Cmd("mkdir", "-p", target), ch.Cmd("mount", "-t", "zfs", d.name, target))
		}
		b.add(ch, step{cmds: cmds})
	}
	return nil
}

// mountList returns the datasets to mount in path order.
func mountList(c *config) []datasetSpec {
	var ms []datasetSpec
	for _, d := range c.datasets {
		if d.mount != "" {
			ms = append(ms, d)
		}
	}
	slices.SortStableFunc(ms, func(a, b datasetSpec) int { return mountOrder(a.mount, b.mount) })
	return ms
}

// plan assembles the plan and the output for register.
func (m *module) plan(ctx context.Context, pr prober, b *builder, st poolState) *modules.Plan {
	c := m.cfg
	devices := []string{}
	lay := layout(c.vdevs)
	if st.actual != nil {
		lay = layoutOf(st.actual)
		for _, v := range st.actual {
			devices = append(devices, v.devices...)
		}
	} else {
		for _, v := range c.vdevs {
			devices = append(devices, v.devices...)
		}
	}
	pool := map[string]any{"name": c.pool, "layout": lay, "devices": devices, "imported": st.imported, "root": c.root}
	datasets := []any{}
	for _, d := range c.datasets {
		datasets = append(datasets, map[string]any{"name": d.name, "mountpoint": d.mountpoint, "mount": d.mount})
	}
	mounts := []any{}
	rootOnZFS := false
	for _, d := range mountList(c) {
		options := []string{}
		if d.zfsMounted() {
			options = append(options, "zfsutil")
		}
		mounts = append(mounts, map[string]any{"device": d.name, "path": d.mount, "target": c.target(d.mount), "fstype": "zfs", "options": options})
		rootOnZFS = rootOnZFS || d.mount == "/"
	}
	out := modules.Output{
		"pool":        c.pool,
		"pools":       []any{pool},
		"datasets":    datasets,
		"mounts":      mounts,
		"root_on_zfs": rootOnZFS,
		"hostid":      pr.hostID(ctx),
	}
	return &modules.Plan{Changes: b.changes, Output: out, Data: b.steps}
}

// datasetProps are the properties a dataset is created with.
func datasetProps(d datasetSpec) Properties {
	p := Properties{"mountpoint": d.mountpoint}
	for k, v := range d.props {
		p[k] = v
	}
	return p
}

func describeDataset(d datasetSpec) string {
	switch {
	case d.mount != "" && d.zfsMounted():
		return " (mountpoint " + d.mountpoint + ")"
	case d.mount != "":
		return " (legacy, mounted at " + d.mount + ")"
	}
	return " (mountpoint " + d.mountpoint + ")"
}

func describeProps(keys []string, vals map[string]string) string {
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, vals[k])
	}
	return b.String()
}

func sortedKeys(p map[string]string) []string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedProps(p Properties) []string {
	var kvs []string
	for _, k := range sortedKeys(p) {
		kvs = append(kvs, k+"="+p[k])
	}
	return kvs
}

func propertyValues(out []byte) map[string]string {
	got := map[string]string{}
	for _, l := range lines(out) {
		if k, v, ok := strings.Cut(l, "\t"); ok {
			got[k] = v
		}
	}
	return got
}

// layoutOf renders a pool's vdevs as ZFS reports them.
func layoutOf(vs []topVdev) string {
	specs := make([]vdevSpec, len(vs))
	for i, v := range vs {
		specs[i] = vdevSpec(v)
	}
	return layout(specs)
}

// partitionPath names partition n of a disk the way Linux does: sda1,
// nvme0n1p1, and by-id links with -partN.
func partitionPath(disk string, n int) string {
	if strings.HasPrefix(disk, "/dev/disk/") {
		return disk + "-part" + strconv.Itoa(n)
	}
	if last := disk[len(disk)-1]; last >= '0' && last <= '9' {
		return disk + "p" + strconv.Itoa(n)
	}
	return disk + strconv.Itoa(n)
}

func knownDisks(h modules.ReadOnlyHost) string {
	f := h.Facts()
	if f == nil || len(f.Disks) == 0 {
		return ""
	}
	var ds []string
	for _, d := range f.Disks {
		s := d.Path
		var parts []string
		for _, p := range d.Partitions {
			parts = append(parts, path.Base(p.Path))
		}
		if len(parts) > 0 {
			s += " (" + strings.Join(parts, " ") + ")"
		}
		ds = append(ds, s)
	}
	return " (its disks: " + strings.Join(ds, ", ") + ")"
}
