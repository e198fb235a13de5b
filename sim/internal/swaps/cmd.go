package swaps

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall"

	"github.com/nixbook/nixbook/sim/hostinit"
)

// The host's swapon(8) and swapoff(8): util-linux 2.38's options, output
// and exit codes, against the host's simulated swap list (swap.go).

// Strerror is the C library's message for an errno.
func Strerror(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	s := errno.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// swapOutput collects what a swapon or swapoff prints and how it ends.
type swapOutput struct {
	prog   string
	stdout strings.Builder
	stderr strings.Builder
}

func (o *swapOutput) warnf(format string, args ...any) {
	fmt.Fprintf(&o.stderr, o.prog+": "+format+"\n", args...)
}

func (o *swapOutput) reply(code int) hostinit.Reply {
	return hostinit.Reply{Stdout: o.stdout.String(), Stderr: o.stderr.String(), Code: code}
}

// usage ends a command with util-linux's answer to bad usage.
func (o *swapOutput) usage(msg string, code int) hostinit.Reply {
	if msg == "" {
		msg = o.prog + ": bad usage\n"
	}
	o.stderr.WriteString(msg)
	fmt.Fprintf(&o.stderr, "Try '%s --help' for more information.\n", o.prog)
	return o.reply(code)
}

// swapon's exit status for a failed area (util-linux returns -1).
const swapFailed = 255

// swapOptions are swapon's settings for one area.
type swapOptions struct {
	prio    int // negative: automatic
	verbose bool
}

// cmdSwapon emulates util-linux's swapon against the host's swap list.
func (h *Emulator) cmdSwapon(ctx context.Context, dir string, args []string) hostinit.Reply {
	o := &swapOutput{prog: "swapon"}
	longs := []longOpt{
		{"priority", requiredArg, "p"}, {"discard", optionalArg, "d"}, {"ifexists", noArg, "e"},
		{"options", optionalArg, "o"}, {"summary", noArg, "s"}, {"fixpgsz", noArg, "f"},
		{"all", noArg, "a"}, {"help", noArg, "h"}, {"verbose", noArg, "v"}, {"version", noArg, "V"},
		{"show", optionalArg, "show"}, {"noheadings", noArg, "noheadings"}, {"raw", noArg, "raw"},
		{"bytes", noArg, "bytes"},
	}
	opts, operands, bad := getopt(o.prog, args, "ahd::efo:p:svVL:U:", longs)
	if bad != "" {
		return o.usage(bad, 1)
	}
	all, ifExists, show, noHeadings, raw, bytes := false, false, false, false, false, false
	so := swapOptions{prio: -1}
	var labels, uuids []string
	var columns []string
	optionList := ""
	for _, op := range opts {
		switch op.key {
		case "a":
			all = true
		case "h":
			o.stdout.WriteString(swaponHelp)
			return o.reply(0)
		case "V":
			o.stdout.WriteString("swapon from util-linux 2.38.1\n")
			return o.reply(0)
		case "s":
			h.swap.mu.Lock()
			areas := h.swap.active()
			if len(areas) > 0 {
				o.stdout.WriteString(swapsFile(areas))
			}
			h.swap.mu.Unlock()
			return o.reply(0)
		case "o":
			optionList = op.val
		case "p":
			n, err := strconv.ParseInt(op.val, 10, 16)
			if err != nil {
				o.warnf("failed to parse priority: '%s'", op.val)
				return o.reply(1)
			}
			so.prio = int(n)
		case "d":
			if v := strings.TrimPrefix(op.val, "="); op.hasVal && v != "once" && v != "pages" {
				o.warnf("unsupported discard policy: %s", v)
				return o.reply(1)
			}
		case "e":
			ifExists = true
		case "v":
			so.verbose = true
		case "L":
			labels = append(labels, op.val)
		case "U":
			uuids = append(uuids, op.val)
		case "show":
			show = true
			if op.hasVal {
				columns = nil
				for _, c := range strings.Split(op.val, ",") {
					if !knownSwapColumn(c) {
						o.warnf("unknown column: %s", c)
						return o.reply(1)
					}
					columns = append(columns, strings.ToUpper(c))
				}
			}
		case "noheadings":
			noHeadings = true
		case "raw":
			raw = true
		case "bytes":
			bytes = true
		}
	}
	if show || (!all && len(labels) == 0 && len(uuids) == 0 && len(operands) == 0) {
		if len(columns) == 0 {
			columns = []string{"NAME", "TYPE", "SIZE", "USED", "PRIO"}
		}
		h.swap.mu.Lock()
		o.stdout.WriteString(swapTable(h.swap.active(), columns, noHeadings, raw, bytes))
		h.swap.mu.Unlock()
		return o.reply(0)
	}
	if ifExists && !all {
		return o.usage("", 1)
	}
	if err := h.host.SyncDevices(ctx); err != nil {
		h.host.Logf("/dev: %v", err)
	}
	status := 0
	if all {
		if !h.swaponAll(ctx, o, so, ifExists) {
			status = swapFailed
		}
	}
	if optionList != "" {
		// Read after --all, as util-linux does; nofail only matters there.
		so.prio, _ = parseSwapOptions(optionList, so.prio)
	}
	// -L and -U name the device they found; a LABEL= operand keeps its
	// name in messages, as util-linux does.
	resolveAndOn := func(tag, value, spec string, byOption bool) {
		dev := h.findTag(ctx, tag, value)
		if dev == "" {
			o.warnf("cannot find the device for %s", spec)
			status = swapFailed
			return
		}
		shown := spec
		if byOption {
			shown = dev
		}
		if !h.swapOn(ctx, o, dir, dev, shown, so) {
			status = swapFailed
		}
	}
	for _, l := range labels {
		resolveAndOn("LABEL", l, l, true)
	}
	for _, u := range uuids {
		resolveAndOn("UUID", u, u, true)
	}
	for _, spec := range operands {
		if tag, value, ok := parseTag(spec); ok {
			resolveAndOn(tag, value, spec, false)
			continue
		}
		if !h.swapOn(ctx, o, dir, spec, spec, so) {
			status = swapFailed
		}
	}
	return o.reply(status)
}

// parseSwapOptions reads fstab-style swap options: pri=N, nofail, discard.
func parseSwapOptions(list string, prio int) (int, bool) {
	nofail := false
	for _, opt := range strings.Split(list, ",") {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "nofail":
			nofail = true
		case "pri":
			if n, err := strconv.Atoi(v); err == nil {
				prio = n
			}
		}
	}
	return prio, nofail
}

// swaponAll turns on the swap entries of the host's /etc/fstab that are not
// on yet.
func (h *Emulator) swaponAll(ctx context.Context, o *swapOutput, base swapOptions, ifExists bool) bool {
	data, err := h.readHostFile("/etc/fstab")
	if err != nil {
		o.warnf("failed to parse /etc/fstab")
		return false
	}
	ok := true
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || strings.HasPrefix(fields[0], "#") || fields[2] != "swap" {
			continue
		}
		options := ""
		if len(fields) > 3 {
			options = fields[3]
		}
		if hasOption(options, "noauto") {
			continue
		}
		so := base
		nofail := ifExists
		var nf bool
		so.prio, nf = parseSwapOptions(options, so.prio)
		nofail = nofail || nf
		spec := fields[0]
		dev := spec
		if tag, value, isTag := parseTag(spec); isTag {
			if dev = h.findTag(ctx, tag, value); dev == "" {
				if !nofail {
					o.warnf("cannot find the device for %s", spec)
					ok = false
				}
				continue
			}
		}
		f, err := h.openInHost("/", dev)
		if err != nil {
			if !nofail {
				o.warnf("cannot find the device for %s", spec)
				ok = false
			}
			continue
		}
		id := fileID(f)
		f.Close()
		h.swap.mu.Lock()
		_, on := h.swap.find(id)
		h.swap.mu.Unlock()
		if on != nil {
			continue
		}
		if !h.swapOn(ctx, o, "/", dev, dev, so) {
			ok = false
		}
	}
	return ok
}

func hasOption(list, name string) bool {
	for _, opt := range strings.Split(list, ",") {
		if opt == name {
			return true
		}
	}
	return false
}

// cmdSwapoff emulates util-linux's swapoff against the host's swap list.
func (h *Emulator) cmdSwapoff(ctx context.Context, dir string, args []string) hostinit.Reply {
	o := &swapOutput{prog: "swapoff"}
	const (
		failed = 4  // swapoff(2) failed
		usage  = 16 // bad usage
	)
	longs := []longOpt{{"all", noArg, "a"}, {"help", noArg, "h"}, {"verbose", noArg, "v"}, {"version", noArg, "V"}}
	opts, operands, bad := getopt(o.prog, args, "ahvVL:U:", longs)
	if bad != "" {
		return o.usage(bad, usage)
	}
	all, verbose := false, false
	var labels, uuids []string
	for _, op := range opts {
		switch op.key {
		case "a":
			all = true
		case "h":
			o.stdout.WriteString(swapoffHelp)
			return o.reply(0)
		case "V":
			o.stdout.WriteString("swapoff from util-linux 2.38.1\n")
			return o.reply(0)
		case "v":
			verbose = true
		case "L":
			labels = append(labels, op.val)
		case "U":
			uuids = append(uuids, op.val)
		}
	}
	if !all && len(labels) == 0 && len(uuids) == 0 && len(operands) == 0 {
		return o.usage("", usage)
	}
	status := 0
	off := func(spec, shown string) {
		if verbose {
			fmt.Fprintf(&o.stdout, "swapoff %s\n", shown)
		}
		f, err := h.openInHost(dir, spec)
		if err != nil {
			o.warnf("%s: swapoff failed: %s", shown, Strerror(err))
			status |= failed
			return
		}
		id := fileID(f)
		f.Close()
		h.swap.mu.Lock()
		defer h.swap.mu.Unlock()
		i, a := h.swap.find(id)
		if a == nil {
			o.warnf("%s: swapoff failed: %s", shown, Strerror(syscall.EINVAL))
			status |= failed
			return
		}
		h.swap.remove(i)
		if err := h.writeSwaps(); err != nil {
			h.host.Logf("%v", err)
		}
	}
	byTag := func(tag, value, shown string) {
		dev := h.findTag(ctx, tag, value)
		if dev == "" {
			o.warnf("cannot find the device for %s", shown)
			status = swapFailed
			return
		}
		off(dev, dev)
	}
	for _, l := range labels {
		byTag("LABEL", l, l)
	}
	for _, u := range uuids {
		byTag("UUID", u, u)
	}
	for _, spec := range operands {
		if tag, value, ok := parseTag(spec); ok {
			byTag(tag, value, spec)
			continue
		}
		off(spec, spec)
	}
	if all {
		h.swap.mu.Lock()
		for i, a := range h.swap.slots {
			if a == nil {
				continue
			}
			if verbose {
				fmt.Fprintf(&o.stdout, "swapoff %s\n", a.path)
			}
			h.swap.remove(i)
		}
		if err := h.writeSwaps(); err != nil {
			h.host.Logf("%v", err)
		}
		h.swap.mu.Unlock()
	}
	return o.reply(status)
}

// knownSwapColumn says whether swapon --show has a column of that name.
func knownSwapColumn(c string) bool {
	switch strings.ToUpper(c) {
	case "NAME", "TYPE", "SIZE", "USED", "PRIO", "UUID", "LABEL":
		return true
	}
	return false
}

// swapTable renders swapon --show as libsmartcols does: nothing when no
// swap is on; columns as wide as their widest cell or header, one space
// apart, numbers right-aligned, the last left-aligned column not padded.
func swapTable(areas []*swapArea, columns []string, noHeadings, raw, bytes bool) string {
	if len(areas) == 0 {
		return ""
	}
	size := func(n int64) string {
		if bytes {
			return strconv.FormatInt(n, 10)
		}
		return humanBytes(uint64(n))
	}
	rows := [][]string{columns}
	for _, a := range areas {
		var row []string
		for _, c := range columns {
			switch c {
			case "NAME":
				row = append(row, a.path)
			case "TYPE":
				row = append(row, map[bool]string{true: "file", false: "partition"}[a.file])
			case "SIZE":
				row = append(row, size(a.kib*1024))
			case "USED":
				row = append(row, size(0))
			case "PRIO":
				row = append(row, strconv.Itoa(a.prio))
			case "UUID":
				row = append(row, a.uuid)
			case "LABEL":
				row = append(row, a.label)
			}
		}
		rows = append(rows, row)
	}
	var b strings.Builder
	if raw {
		for i, row := range rows {
			if i == 0 && noHeadings {
				continue
			}
			for j, cell := range row {
				if j > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(rawCell(cell))
			}
			b.WriteByte('\n')
		}
		return b.String()
	}
	widths := make([]int, len(columns))
	for _, row := range rows {
		for j, cell := range row {
			widths[j] = max(widths[j], len(cell))
		}
	}
	right := func(c string) bool { return c == "SIZE" || c == "USED" || c == "PRIO" }
	for i, row := range rows {
		if i == 0 && noHeadings {
			continue
		}
		for j, cell := range row {
			if j > 0 {
				b.WriteByte(' ')
			}
			pad := strings.Repeat(" ", widths[j]-len(cell))
			switch {
			case right(columns[j]):
				b.WriteString(pad + cell)
			case j == len(row)-1:
				b.WriteString(cell)
			default:
				b.WriteString(cell + pad)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// rawCell escapes a cell of --raw output as libsmartcols does.
func rawCell(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '\\' || c == 0x7f {
			fmt.Fprintf(&b, `\x%02x`, c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// humanBytes is util-linux's size_to_human_string with one-letter
// suffixes: 512M, 1.5G, 0B.
func humanBytes(n uint64) string {
	exp := 0
	for shift := 10; shift <= 60; shift += 10 {
		if n < 1<<shift {
			break
		}
		exp = shift
	}
	letter := "BKMGTPE"[exp/10]
	dec := n >> exp
	frac := uint64(0)
	if exp > 0 {
		frac = n & (1<<exp - 1)
		if frac >= math.MaxUint64/1000 {
			frac = frac / 1024 * 1000 / (1 << (exp - 10))
		} else {
			frac = frac * 1000 / (1 << exp)
		}
		frac = (frac + 50) / 100 // one digit after the point
		if frac >= 10 {
			dec++
			frac = 0
		}
	}
	if frac != 0 {
		return fmt.Sprintf("%d.%d%c", dec, frac, letter)
	}
	return fmt.Sprintf("%d%c", dec, letter)
}

const swaponHelp = `
Usage:
 swapon [options] [<spec>]

Enable devices and files for paging and swapping.

Options:
 -a, --all                enable all swaps from /etc/fstab
 -d, --discard[=<policy>] enable swap discards, if supported by device
 -e, --ifexists           silently skip devices that do not exist
 -f, --fixpgsz            reinitialize the swap space if necessary
 -o, --options <list>     comma-separated list of swap options
 -p, --priority <prio>    specify the priority of the swap device
 -s, --summary            display summary about used swap devices (DEPRECATED)
     --show[=<columns>]   display summary in definable table
     --noheadings         don't print table heading (with --show)
     --raw                use the raw output format (with --show)
     --bytes              display swap size in bytes in --show output
 -v, --verbose            verbose mode

 -h, --help               display this help
 -V, --version            display version

The <spec> parameter:
 -L <label>             synonym for LABEL=<label>
 -U <uuid>              synonym for UUID=<uuid>
 LABEL=<label>          specifies device by swap area label
 UUID=<uuid>            specifies device by swap area UUID
 PARTLABEL=<label>      specifies device by partition label
 PARTUUID=<uuid>        specifies device by partition UUID
 <device>               name of device to be used
 <file>                 name of file to be used

Available columns (for --show):
 NAME   device file or partition path
 TYPE   type of the device
 SIZE   size of the swap area
 USED   bytes in use
 PRIO   swap priority
 UUID   swap uuid
 LABEL  swap label

Swap is simulated per host by nixbook-sim; see swapon(8).
`

const swapoffHelp = `
Usage:
 swapoff [options] [<spec>]

Disable devices and files for paging and swapping.

Options:
 -a, --all              disable all swaps from /proc/swaps
 -v, --verbose          verbose mode

 -h, --help             display this help
 -V, --version          display version

The <spec> parameter:
 -L <label>             LABEL of device to be used
 -U <uuid>              UUID of device to be used
 LABEL=<label>          LABEL of device to be used
 UUID=<uuid>            UUID of device to be used
 <device>               name of device to be used
 <file>                 name of file to be used

Swap is simulated per host by nixbook-sim; see swapoff(8).
`
