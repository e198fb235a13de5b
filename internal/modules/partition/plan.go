package partition

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/disk"
	"github.com/nixbook/nixbook/internal/transport"
)

// Partition type ids that tell GRUB and firmware what a partition is for.
const (
	guidBIOSGrub = "21686148-6449-6e6f-744e-656564454649"
	guidESP      = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	guidSwap     = "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f"
	mbrESP       = "0xef"
	mbrSwap      = "0x82"
	mbrActive    = "0x80"
)

// toleranceSectors is how far an existing partition's start and size may be
// from the layout's and still count as the layout: parted may nudge a
// boundary to the disk's alignment.
const toleranceSectors = disk.MiB / 512

// nodeWait bounds the wait for partition nodes after parted.
const nodeWait = 10 * time.Second

// step is one command of a change.
type step struct {
	cmd transport.Cmd
	// wait polls the command until it succeeds, up to nodeWait
	// (partition nodes appear when udev gets to them).
	wait bool
	// optional tolerates a missing program (exit 127): udevadm is not
	// everywhere.
	optional bool
	// upload writes a file instead of running cmd; what it holds is never
	// shown.
	upload *upload
	// unlessFS skips cmd (a mkfs) when its device holds that filesystem
	// already; another one fails the step unless wipe.
	unlessFS string
	wipe     bool
}

// upload is a file a step writes on the host.
type upload struct {
	path string
	data []byte
	mode fs.FileMode
}

// plan is what Check hands Apply.
type plan struct {
	steps   [][]step // per change
	written bool     // disks change, so facts must be gathered again
	// adopt are disks whose table becomes this reinstall's: a new one, or
	// one without data that a run cut short left. Apply remembers their ids.
	adopt []string
}

// diskPlan is what happens to one disk.
type diskPlan struct {
	k       int
	st      *diskState
	slots   []slot
	stable  string // by-id link or kernel path for other tools
	byID    string // the by-id link partition links derive from; "" if none
	fresh   bool   // a new partition table
	mine    bool   // the table is the one this reinstall made
	wipe    []string
	format  map[int]bool   // slot index -> make its filesystem (or clear it)
	bootSet int            // msdos slot index that gets the boot flag; -1 for none
	vols    map[int]volume // slot index -> the opened LUKS volume of an encrypted slot
}

func (m *module) firmware(ctx context.Context, h modules.ReadOnlyHost) (string, error) {
	if m.args.Firmware != "auto" {
		return m.args.Firmware, nil
	}
	if f := h.Facts(); f != nil && (f.Firmware == "bios" || f.Firmware == "uefi") {
		return f.Firmware, nil
	}
	_, err := h.Probe(ctx, transport.Cmd{Args: []string{"test", "-d", "/sys/firmware/efi"}})
	var exit *transport.ExitError
	switch {
	case err == nil:
		return "uefi", nil
	case errors.As(err, &exit) && exit.ExitCode == 1:
		return "bios", nil
	}
	return "", fmt.Errorf("tell BIOS from UEFI: %w", err)
}

// Preflight refuses, before the play changes anything (the stock playbooks
// reboot into the rescue and kexec before they partition), disks too small
// for the layout and disks that hold data without wipe: true. What the
// running system uses now, or a disk it does not show, is left to Check: the
// system that partitions may be another one.
func (m *module) Preflight(ctx context.Context, h modules.ReadOnlyHost) error {
	_, err := m.decideAll(ctx, h)
	var inUse *inUseError
	var probeErr *probeError
	if errors.As(err, &inUse) || errors.As(err, &probeErr) {
		return nil
	}
	return err
}

// probeError is a failure to read the disks' state.
type probeError struct{ err error }

func (e *probeError) Error() string { return e.err.Error() }
func (e *probeError) Unwrap() error { return e.err }

// decision is what decideAll found: the layout for the firmware, the
// disks' state and what each disk needs.
type decision struct {
	layout   *layout
	firmware string
	state    *hostState
	disks    []*diskPlan
	notes    []string // disks followed to another name (followDisks)
}

// decideAll reads the disks and decides what each needs, refusing what
// would destroy data or touch a disk in use.
func (m *module) decideAll(ctx context.Context, h modules.ReadOnlyHost) (*decision, error) {
	fw, err := m.firmware(ctx, h)
	if err != nil {
		return nil, &probeError{err}
	}
	l, err := m.layout(fw)
	if err != nil {
		return nil, err
	}
	if err := l.firmwareRules(fw); err != nil {
		return nil, err
	}
	disks, notes, err := followDisks(h, m.args.Disks)
	if err != nil {
		return nil, err
	}
	st, err := probe(ctx, h, disks)
	if err != nil {
		return nil, &probeError{err}
	}
	mine, err := reinstallTables(h)
	if err != nil {
		return nil, err
	}
	d := &decision{layout: l, firmware: fw, state: st, notes: notes}
	for k, ds := range st.disks {
		slots, small := l.place(k, ds.Bytes)
		if small != nil {
			if small.why != "" {
				return nil, fmt.Errorf("%s: %s", ds.Given, small.why)
			}
			return nil, fmt.Errorf("%s is %s; the layout needs %s", ds.Given, disk.Human(ds.Bytes), disk.Human(small.needBytes))
		}
		dp := &diskPlan{k: k, st: ds, slots: slots, format: map[int]bool{}, bootSet: bootSlot(l, fw, slots), mine: ds.PTUUID != "" && mine[ds.PTUUID]}
		dp.stable, dp.byID = stableNames(h.Facts(), ds)
		d.disks = append(d.disks, dp)
	}
	for _, dp := range d.disks {
		if err := m.decide(l, dp); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	d, err := m.decideAll(ctx, h)
	if err != nil {
		return nil, err
	}
	var key []byte
	if d.layout.hasEncrypted() {
		if key, err = m.readKey(); err != nil {
			return nil, err
		}
	}
	b := &builder{}
	for _, dp := range d.disks {
		dp.vols = map[int]volume{}
		for i, s := range dp.slots {
			if s.part.Encrypt && !dp.format[i] {
				if dp.vols[i], err = probeVolume(ctx, h, s); err != nil {
					return nil, err
				}
			}
		}
		m.diskChanges(b, d.layout, dp, key)
		if err := m.volumeChanges(b, key, dp, dp.vols); err != nil {
			return nil, err
		}
	}
	mounts, deferred, err := m.mountChanges(b, d.state, d.disks)
	if err != nil {
		return nil, err
	}
	if key != nil {
		if err := m.initrdKeyChanges(ctx, b, h, key, mounts, deferred); err != nil {
			return nil, err
		}
	}
	p := &modules.Plan{Changes: b.changes, Output: output(d.layout, d.firmware, d.disks, mounts, m.args.Root)}
	notes := d.notes
	if deferred != "" {
		notes = append(notes, deferred)
	}
	for _, n := range notes {
		h.Log("%s", n)
	}
	p.Message = strings.Join(notes, "; ")
	pd := &plan{steps: b.steps, written: b.written}
	for _, dp := range d.disks {
		if dp.fresh || !dp.mine {
			pd.adopt = append(pd.adopt, dp.st.Path)
		}
	}
	p.Data = pd
	return p, nil
}

// bootSlot picks the partition an msdos disk marks active, as some BIOSes
// will not boot a disk without one: /boot's, else /'s, else the first.
func bootSlot(l *layout, fw string, slots []slot) int {
	if l.Label != "msdos" || fw != "bios" {
		return -1
	}
	for _, want := range []string{"/boot", "/"} {
		for i, s := range slots {
			if s.part.Mount == want && !s.part.OutsideRoot {
				return i
			}
		}
	}
	return 0
}

// stableNames picks the disk's name for other tools and the by-id link its
// partitions' links derive from.
func stableNames(f *facts.Facts, ds *diskState) (stable, byID string) {
	if disk.IsLink(ds.Given) && strings.HasPrefix(ds.Given, disk.ByIDDir+"/") {
		return ds.Given, ds.Given
	}
	if f != nil {
		if fd, ok := f.Disk(ds.Path); ok {
			if id := disk.PreferredByID(fd.ByID); id != "" {
				return id, id
			}
		}
	}
	return ds.Path, ""
}

// decide works out what disk needs: nothing, filesystems on some
// partitions, or a new table; and refuses what would destroy data or touch
// a disk in use.
func (m *module) decide(l *layout, dp *diskPlan) error {
	ds := dp.st
	matches := tableMatches(l, dp, len(dp.slots)) && len(ds.Parts) == len(dp.slots)
	if matches && !dp.mine && holdsData(dp) {
		// The layout of an earlier install, not of this reinstall: its
		// files are an old system's, not work to resume.
		if !m.args.Wipe {
			return fmt.Errorf("%s holds an earlier install of this layout (%s), not one this reinstall made; set wipe: true to erase it", ds.Given, describeDisk(ds))
		}
		matches = false
	}
	if matches {
		for i, s := range dp.slots {
			p := partByNumber(ds, s.number)
			switch content(p, s) {
			case contentOK:
			case contentBlank:
				dp.format[i] = true
			case contentForeign:
				if !m.args.Wipe {
					return fmt.Errorf("%s holds %s where the layout puts %s; set wipe: true to erase it", p.Path, describeDev(p), describeSlot(s))
				}
				dp.format[i] = true
				dp.wipe = append(dp.wipe, p.Path)
			}
		}
		for i := range dp.slots {
			if !dp.format[i] {
				continue
			}
			p := partByNumber(ds, dp.slots[i].number)
			if uses := p.uses(); len(uses) > 0 {
				return inUse(p.Path, strings.Join(uses, ", "))
			}
		}
		return nil
	}
	dp.fresh = true
	for i := range dp.slots {
		dp.format[i] = true
	}
	if !empty(ds) && !unfinished(l, dp) {
		if !m.args.Wipe {
			return fmt.Errorf("%s holds %s; set wipe: true to erase it", ds.Given, describeDisk(ds))
		}
		for _, p := range ds.Parts {
			dp.wipe = append(dp.wipe, p.Path)
		}
		dp.wipe = append(dp.wipe, ds.Path)
	}
	var uses []string
	for _, u := range ds.uses() {
		uses = append(uses, path.Base(ds.Path)+" "+u)
	}
	for _, p := range ds.Parts {
		for _, u := range p.uses() {
			uses = append(uses, path.Base(p.Path)+" "+u)
		}
	}
	if len(uses) > 0 {
		return inUse(ds.Given, strings.Join(uses, ", "))
	}
	return nil
}

// holdsData reports a disk whose partitions hold any signature:
// filesystems, a pool, swap.
func holdsData(dp *diskPlan) bool {
	for _, s := range dp.slots {
		if p := partByNumber(dp.st, s.number); p != nil && !p.blank() {
			return true
		}
	}
	return false
}

// followDisks maps the disks a task names by kernel path (/dev/sda) to the
// disk that had that path when the reinstall began (see
// modules.MemoryDiskNames, else the start of this run): after a kexec or a
// reboot, the kernel may give the name to another disk, and nixbook must
// never lay out or wipe that one. It returns the paths to use now and a note
// per disk that moved.
func followDisks(h modules.ReadOnlyHost, given []string) ([]string, []string, error) {
	pins, err := diskPins(h)
	if err != nil {
		return nil, nil, err
	}
	now := h.Facts().StableDisks()
	pathOf := map[string]string{}
	for p, id := range now {
		pathOf[id] = p
	}
	out := slices.Clone(given)
	var notes []string
	for i, g := range given {
		want, pinned := pins[g]
		if disk.IsLink(g) || !pinned || now[g] == want {
			continue
		}
		p, ok := pathOf[want]
		if !ok {
			return nil, nil, fmt.Errorf("%s was %s when the reinstall began, and no disk of this system is: nixbook never guesses a disk; name it by its /dev/disk/by-id link", g, want)
		}
		out[i] = p
		notes = append(notes, fmt.Sprintf("%s: %s when the reinstall began (%s) is %s in this system: the layout follows the disk, not the name", h.Name(), g, want, p))
	}
	return out, notes, nil
}

// diskPins is what each kernel name meant when the reinstall began: as
// remembered, else as the run first found the host.
func diskPins(h modules.ReadOnlyHost) (map[string]string, error) {
	text, err := h.Recall(modules.MemoryDiskNames)
	if err != nil {
		return nil, err
	}
	if text == "" {
		return h.Facts().DisksAtStart, nil
	}
	pins := map[string]string{}
	for _, kv := range strings.Fields(text) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			pins[k] = v
		}
	}
	return pins, nil
}

// reinstallTables are the partition tables the reinstall in progress made
// (modules.MemoryReinstall).
func reinstallTables(h modules.ReadOnlyHost) (map[string]bool, error) {
	text, err := h.Recall(modules.MemoryReinstall)
	if err != nil {
		return nil, err
	}
	mine := map[string]bool{}
	for _, id := range strings.Fields(text) {
		mine[id] = true
	}
	return mine, nil
}

// inUse refuses a disk the running system uses. It is NotYet: the system
// that partitions may be another one, booted by an earlier task.
func inUse(dev, uses string) error {
	return modules.NotYet(&inUseError{fmt.Sprintf("%s is in use by the running system (%s): nixbook never repartitions or formats what the running system uses, wipe or not; boot the rescue system, or unmount it first", dev, uses)})
}

// inUseError is a disk the running system uses.
type inUseError struct{ msg string }

func (e *inUseError) Error() string { return e.msg }

// empty is a disk without any signature and without partitions (an empty
// table holds nothing to lose).
func empty(ds *diskState) bool {
	return ds.FSType == "" && ds.Ambivalent == "" && len(ds.Parts) == 0
}

// unfinished is a disk holding the first partitions of this very layout,
// all blank: what a run cut short inside parted leaves.
func unfinished(l *layout, dp *diskPlan) bool {
	ds := dp.st
	if ds.FSType != "" || ds.Ambivalent != "" || len(ds.Parts) > len(dp.slots) {
		return false
	}
	if !tableMatches(l, dp, len(ds.Parts)) {
		return false
	}
	for _, p := range ds.Parts {
		if !p.blank() {
			return false
		}
	}
	return true
}

// tableMatches reports whether the disk's table type and its first n
// partitions are the layout's.
func tableMatches(l *layout, dp *diskPlan, n int) bool {
	ds := dp.st
	want := map[string]string{"gpt": "gpt", "msdos": "dos"}[l.Label]
	if ds.PTType != want {
		return false
	}
	for i, s := range dp.slots[:n] {
		p := partByNumber(ds, s.number)
		if p == nil || !near(p.Start, s.startMiB*toleranceSectors) || !near(p.Sectors, s.sizeMiB()*toleranceSectors) {
			return false
		}
		if l.Label == "gpt" && p.PartName != s.name {
			return false
		}
		if want := partType(l.Label, s.part.Type); want != "" && p.PartType != want {
			return false
		}
		if i == dp.bootSet && p.PartFlags != mbrActive {
			return false
		}
	}
	return true
}

func near(a, b int64) bool {
	d := a - b
	return d >= -toleranceSectors && d <= toleranceSectors
}

// partType is the type id parted gives a partition of typ, where it
// matters for booting or swap.
func partType(label, typ string) string {
	switch {
	case typ == typeBIOSGrub:
		return guidBIOSGrub
	case typ == typeESP && label == "gpt":
		return guidESP
	case typ == typeESP:
		return mbrESP
	case typ == typeSwap && label == "gpt":
		return guidSwap
	case typ == typeSwap:
		return mbrSwap
	}
	return ""
}

func partByNumber(ds *diskState, n int) *devState {
	for i := range ds.Parts {
		if ds.Parts[i].Number == n {
			return &ds.Parts[i]
		}
	}
	return nil
}

type contentState int

const (
	contentOK contentState = iota
	contentBlank
	contentForeign
)

// content compares a partition's signature with what the layout puts there.
func content(p *devState, s slot) contentState {
	info := types[s.part.Type]
	switch {
	case s.part.Encrypt:
		// The volume; what it holds is seen once it is open.
		if p.FSType == fsLUKS && p.Ambivalent == "" {
			return contentOK
		}
	case info.fsType != "":
		if p.FSType == info.fsType && p.Ambivalent == "" && labelEqual(info.fsType, p.Label, s.label) {
			return contentOK
		}
	case s.part.Type == typeZFS:
		// The zfs module's pool, or nothing yet.
		if p.FSType == "zfs_member" || p.blank() {
			return contentOK
		}
	default:
		// bios_grub holds GRUB's raw core image; none is the user's.
		return contentOK
	}
	if p.blank() {
		return contentBlank
	}
	return contentForeign
}

// labelEqual compares labels; FAT labels are case-insensitive.
func labelEqual(fs, have, want string) bool {
	if fs == "vfat" {
		return strings.EqualFold(have, want)
	}
	return have == want
}

// tableName is a blkid PTTYPE as parted names it.
func tableName(pttype string) string {
	if pttype == "dos" {
		return "msdos"
	}
	return pttype
}

func describeDisk(ds *diskState) string {
	var what []string
	if ds.Ambivalent != "" {
		what = append(what, "several signatures ("+ds.Ambivalent+")")
	}
	if ds.FSType != "" {
		what = append(what, describeDev(&ds.devState)+" on the whole disk")
	}
	if ds.PTType != "" || len(ds.Parts) > 0 {
		table := "a partition table"
		switch ds.PTType {
		case "dos":
			table = "an msdos partition table"
		case "gpt":
			table = "a GPT partition table"
		case "":
		default:
			table = "a " + ds.PTType + " partition table"
		}
		n := fmt.Sprintf("%d partitions", len(ds.Parts))
		if len(ds.Parts) == 1 {
			n = "1 partition"
		}
		var parts []string
		for i := range ds.Parts {
			parts = append(parts, path.Base(ds.Parts[i].Path)+" "+describeDev(&ds.Parts[i]))
		}
		what = append(what, fmt.Sprintf("%s with %s (%s)", table, n, strings.Join(parts, ", ")))
	}
	return strings.Join(what, " and ")
}

// describeDev says what a device holds: "ext4 'debian'", "swap", "no
// filesystem".
func describeDev(d *devState) string {
	switch {
	case d.Ambivalent != "":
		return "several signatures"
	case d.FSType == "":
		return "no filesystem"
	case d.Label != "":
		return fmt.Sprintf("%s '%s'", d.FSType, d.Label)
	}
	return d.FSType
}

func describeSlot(s slot) string {
	fs := types[s.part.Type].fsType
	if fs == "" {
		fs = s.part.Type
	}
	if s.label != "" {
		return fmt.Sprintf("%s '%s'", fs, s.label)
	}
	return fs
}

// builder collects changes with the steps that carry them out.
type builder struct {
	changes []modules.Change
	steps   [][]step
	written bool
}

func (b *builder) add(c modules.Change, steps []step) {
	b.changes = append(b.changes, c)
	b.steps = append(b.steps, steps)
}

// cmds records steps' command lines in a change, so what is shown is what
// runs.
func record(c *modules.Change, steps []step) {
	for _, s := range steps {
		if s.upload == nil {
			c.Commands = append(c.Commands, s.cmd.Line())
		}
	}
}

func run(args ...string) step { return step{cmd: transport.Cmd{Args: args}} }

func (m *module) diskChanges(b *builder, l *layout, dp *diskPlan, key []byte) {
	ds := dp.st
	if dp.fresh && len(dp.wipe) > 0 {
		var steps []step
		for _, dev := range dp.wipe {
			steps = append(steps, run("wipefs", "-a", dev))
		}
		c := modules.Change{Summary: fmt.Sprintf("erase %s: %s", ds.Given, describeDisk(ds))}
		record(&c, steps)
		b.add(c, steps)
		b.written = true
	}
	if dp.fresh {
		argv := []string{"parted", "-s", "-a", "optimal", ds.Path, "--", "mklabel", l.Label}
		var flags []string
		for i, s := range dp.slots {
			info := types[s.part.Type]
			name := s.name
			if l.Label == "msdos" {
				name = "primary"
			}
			argv = append(argv, "mkpart", name)
			if info.partedFS != "" {
				argv = append(argv, info.partedFS)
			}
			argv = append(argv, fmt.Sprintf("%dMiB", s.startMiB), fmt.Sprintf("%dMiB", s.endMiB))
			switch {
			case s.part.Type == typeBIOSGrub:
				flags = append(flags, "set", fmt.Sprint(s.number), "bios_grub", "on")
			case s.part.Type == typeESP:
				flags = append(flags, "set", fmt.Sprint(s.number), "esp", "on")
			}
			if i == dp.bootSet {
				flags = append(flags, "set", fmt.Sprint(s.number), "boot", "on")
			}
		}
		steps := []step{run(append(argv, flags...)...), {cmd: transport.Cmd{Args: []string{"udevadm", "settle", "--timeout=10"}}, optional: true}}
		for _, s := range dp.slots {
			steps = append(steps, step{cmd: transport.Cmd{Args: []string{"test", "-b", disk.PartitionPath(ds.Path, s.number)}}, wait: true})
		}
		if dp.byID != "" {
			for _, s := range dp.slots {
				steps = append(steps, step{cmd: transport.Cmd{Args: []string{"test", "-b", disk.PartitionPath(dp.byID, s.number)}}, wait: true})
			}
		}
		// New partitions may start where old ones did and show their
		// signatures again; clear them so unformatted partitions (zfs,
		// bios_grub) start blank.
		for _, s := range dp.slots {
			steps = append(steps, run("wipefs", "-a", disk.PartitionPath(ds.Path, s.number)))
		}
		c := modules.Change{
			Summary: fmt.Sprintf("partition %s (%s): %s", ds.Given, l.Label, summarizeSlots(dp.slots)),
			Before:  describeTable(ds),
			After:   layoutTable(l, dp),
		}
		record(&c, steps)
		b.add(c, steps)
		b.written = true
	}
	for i, s := range dp.slots {
		if !dp.format[i] {
			continue
		}
		dev := disk.PartitionPath(ds.Path, s.number)
		var steps []step
		summary := fmt.Sprintf("format %s as %s", dev, describeSlot(s))
		if !dp.fresh && slices.Contains(dp.wipe, dev) {
			// A partition of a matching table that holds something else.
			steps = append(steps, run("wipefs", "-a", dev))
			summary = fmt.Sprintf("erase %s (%s) and format it as %s", dev, describeDev(partByNumber(ds, s.number)), describeSlot(s))
			if types[s.part.Type].mkfs == nil {
				summary = fmt.Sprintf("erase %s (%s) for %s", dev, describeDev(partByNumber(ds, s.number)), s.part.Type)
			}
		}
		if s.part.Encrypt {
			summary = strings.Replace(summary, "format "+dev+" as ", fmt.Sprintf("make a LUKS2 volume on %s (key from %s), open it as %s and format it as ", dev, m.args.LUKSKeyFile, mapperPath(s)), 1)
			steps = append(steps, formatEncrypted(key, dev, s)...)
		} else if mkfs := types[s.part.Type].mkfs; mkfs != nil {
			steps = append(steps, run(mkfs(s.label, dev)...))
		}
		if len(steps) == 0 {
			continue
		}
		c := modules.Change{Summary: summary}
		record(&c, steps)
		b.add(c, steps)
		b.written = true
	}
}

func summarizeSlots(slots []slot) string {
	var parts []string
	for _, s := range slots {
		parts = append(parts, fmt.Sprintf("%s %s %s", s.name, disk.Human(s.sizeMiB()*disk.MiB), s.part.Type))
	}
	return strings.Join(parts, ", ")
}

// describeTable is the disk's content for --diff.
func describeTable(ds *diskState) string {
	if empty(ds) && ds.PTType == "" {
		return "(blank disk)\n"
	}
	var b strings.Builder
	if ds.PTType != "" {
		fmt.Fprintf(&b, "%s table\n", tableName(ds.PTType))
	}
	if ds.FSType != "" || ds.Ambivalent != "" {
		fmt.Fprintf(&b, "whole disk: %s\n", describeDev(&ds.devState))
	}
	for i := range ds.Parts {
		p := &ds.Parts[i]
		fmt.Fprintf(&b, "%s %s %s", path.Base(p.Path), disk.Human(p.Bytes), describeDev(p))
		if p.PartName != "" {
			fmt.Fprintf(&b, " name %s", p.PartName)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// layoutTable is the planned layout for --diff.
func layoutTable(l *layout, dp *diskPlan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s table\n", l.Label)
	for _, s := range dp.slots {
		fmt.Fprintf(&b, "%s %s %s", path.Base(disk.PartitionPath(dp.st.Path, s.number)), disk.Human(s.sizeMiB()*disk.MiB), describeSlot(s))
		if l.Label == "gpt" {
			fmt.Fprintf(&b, " name %s", s.name)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// mountItem is one planned mount or swap.
type mountItem struct {
	dp       *diskPlan
	slot     slot
	device   string // kernel path
	target   string // path on the host; "" for swap
	inTarget string // path in the installed system; "" outside root
}

func (m *module) mountChanges(b *builder, st *hostState, dps []*diskPlan) ([]mountItem, string, error) {
	var items []mountItem
	hasRoot := false
	for _, dp := range dps {
		for _, s := range dp.slots {
			if dp.k > 0 && !s.part.EveryDisk {
				continue
			}
			it := mountItem{dp: dp, slot: s, device: disk.PartitionPath(dp.st.Path, s.number)}
			if s.part.Encrypt {
				it.device = mapperPath(s)
			}
			switch {
			case s.part.Type == typeSwap:
			case s.part.Mount == "":
				continue
			case s.part.OutsideRoot:
				it.target = s.part.Mount + suffix(dp.k)
			default:
				it.inTarget = s.part.Mount + suffix(dp.k)
				it.target = path.Join(m.args.Root, it.inTarget)
				hasRoot = hasRoot || s.part.Mount == "/"
			}
			items = append(items, it)
		}
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i].target, items[j].target
		if a == "" || b == "" {
			return a != "" && b == ""
		}
		if da, db := strings.Count(a, "/"), strings.Count(b, "/"); da != db {
			return da < db
		}
		return a < b
	})
	if !m.args.Mount {
		return items, "", nil
	}
	// Mounts under root need the root mounted first. When the layout
	// leaves / to another module (ZFS), they wait until it has.
	deferred := ""
	if !hasRoot {
		top := st.topMount(m.args.Root)
		rootReady := top != nil && (strings.HasPrefix(top.Source, "/dev/") || top.FSType == "zfs")
		if !rootReady {
			var waiting []string
			for _, it := range items {
				if it.inTarget != "" {
					waiting = append(waiting, it.target)
				}
			}
			if len(waiting) > 0 {
				deferred = fmt.Sprintf("not mounted yet: %s (nothing is mounted at %s and the layout has no /; mount the root first, e.g. with the zfs module, then run this task again)", strings.Join(waiting, ", "), m.args.Root)
			}
		}
	}
	for _, it := range items {
		if it.inTarget != "" && deferred != "" {
			continue
		}
		p := partByNumber(it.dp.st, it.slot.number)
		unchanged := p != nil && !it.dp.fresh && !it.dp.format[slotIndex(it.dp, it.slot)]
		majMin := ""
		if p != nil {
			majMin = p.MajMin
		}
		if it.slot.part.Encrypt {
			majMin = it.dp.vols[slotIndex(it.dp, it.slot)].majMin
			unchanged = unchanged && majMin != ""
		}
		if it.target == "" {
			if unchanged && p.Swap {
				continue
			}
			steps := []step{run("swapon", it.device)}
			c := modules.Change{Summary: "turn on swap " + it.device}
			record(&c, steps)
			b.add(c, steps)
			continue
		}
		top := st.topMount(it.target)
		if top != nil && unchanged && top.MajMin == majMin {
			continue
		}
		if top != nil && strings.HasPrefix(top.Source, "/dev/") {
			return nil, "", fmt.Errorf("%s is already mounted from %s, not %s; unmount it first", it.target, top.Source, it.device)
		}
		argv := []string{"mount", "-t", types[it.slot.part.Type].mountFS}
		if len(it.slot.part.Options) > 0 {
			argv = append(argv, "-o", strings.Join(it.slot.part.Options, ","))
		}
		steps := []step{run("mkdir", "-p", it.target), run(append(argv, it.device, it.target)...)}
		c := modules.Change{Summary: fmt.Sprintf("mount %s at %s", it.device, it.target)}
		record(&c, steps)
		b.add(c, steps)
	}
	return items, deferred, nil
}

func slotIndex(dp *diskPlan, s slot) int {
	for i := range dp.slots {
		if dp.slots[i].number == s.number {
			return i
		}
	}
	return -1
}

// output is what the task publishes for `register`, for the zfs and
// nixos_config tasks after it.
func output(l *layout, fw string, dps []*diskPlan, mounts []mountItem, root string) modules.Output {
	partLink := func(dp *diskPlan, n int) (string, string) {
		dev := disk.PartitionPath(dp.st.Path, n)
		if dp.byID == "" {
			return dev, ""
		}
		id := disk.PartitionPath(dp.byID, n)
		return id, id
	}
	var disks []any
	partitions := map[string]any{}
	paths := map[string]any{}
	var boot, luks []any
	for _, dp := range dps {
		disks = append(disks, map[string]any{
			"name": dp.st.Given, "device": dp.st.Path, "stable": dp.stable, "size_bytes": dp.st.Bytes,
		})
		booted := l.Label == "msdos" && fw == "bios"
		for _, s := range dp.slots {
			stable, byID := partLink(dp, s.number)
			entry := map[string]any{
				"disk":       dp.st.Given,
				"device":     disk.PartitionPath(dp.st.Path, s.number),
				"by_id":      byID,
				"stable":     stable,
				"number":     s.number,
				"name":       s.name,
				"label":      s.label,
				"type":       s.part.Type,
				"size_bytes": s.sizeMiB() * disk.MiB,
			}
			if s.part.Encrypt {
				entry["mapper"] = mapperPath(s)
				luks = append(luks, map[string]any{
					"name":     mapperName(s),
					"device":   stable,
					"mapper":   mapperPath(s),
					"key_file": path.Join(InitrdKeyDir, mapperName(s)+".key"),
				})
			}
			list, _ := partitions[s.part.Name].([]any)
			partitions[s.part.Name] = append(list, entry)
			pl, _ := paths[s.part.Name].([]any)
			paths[s.part.Name] = append(pl, stable)
			if fw == "bios" && s.part.Type == typeBIOSGrub || fw == "uefi" && s.part.Type == typeESP {
				booted = true
			}
		}
		if booted {
			boot = append(boot, dp.stable)
		}
	}
	var mountList, swaps []any
	var bootMounts []any
	for _, it := range mounts {
		stable, _ := partLink(it.dp, it.slot.number)
		if it.slot.part.Encrypt {
			stable = it.device
		}
		if it.target == "" {
			swaps = append(swaps, map[string]any{"device": it.device, "stable": stable})
			continue
		}
		mountList = append(mountList, map[string]any{
			"device":     it.device,
			"stable":     stable,
			"path":       it.target,
			"mountpoint": it.inTarget,
			"fstype":     types[it.slot.part.Type].mountFS,
			"options":    strings.Join(it.slot.part.Options, ","),
		})
		if it.slot.part.EveryDisk && len(dps) > 1 && it.inTarget != "" && strings.HasPrefix(it.slot.part.Mount, "/boot") {
			bootMounts = append(bootMounts, map[string]any{"path": it.inTarget, "devices": []any{it.dp.stable}})
		}
	}
	out := modules.Output{
		"firmware":     fw,
		"label":        l.Label,
		"root":         root,
		"disks":        nonNil(disks),
		"partitions":   partitions,
		"paths":        paths,
		"boot_devices": nonNil(boot),
		"mounts":       nonNil(mountList),
		"swaps":        nonNil(swaps),
		"luks":         nonNil(luks),
	}
	if len(bootMounts) > 0 {
		out["mirrored_boots"] = bootMounts
	}
	return out
}

func nonNil(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}
