package sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/nixbook/nixbook/sim/hostinit"
)

// nvramEntry is one of the firmware's boot entries (Boot0000...).
type nvramEntry struct {
	num    int
	label  string
	loader string // \EFI\debian\grubx64.efi; empty for the network boot
	disk   string // the disk efibootmgr -c was given, as the host named it
	part   int
}

// nvram is a UEFI host's firmware variables as far as booting goes: its
// boot entries and their order. It outlives reboots and reinstalls, as the
// firmware's flash does. OVH boots its servers from the network first (the
// netboot set in the API decides what comes next), so the order starts
// with the network boot; an install that puts a disk entry first takes the
// server away from the API's netboot.
type nvram struct {
	mu      sync.Mutex
	entries []nvramEntry
	order   []int
	// writes are the commands that changed the variables, oldest first.
	writes []string
}

// newNVRAM is the NVRAM of a UEFI server as OVH hands it over: the
// network boot, then OVH's Debian install on the disk.
func newNVRAM() *nvram {
	return &nvram{
		entries: []nvramEntry{
			{num: 0, label: "UEFI: PXE IPv4 Intel(R) I350 Gigabit Network Connection"},
			{num: 1, label: "debian", loader: `\EFI\debian\grubx64.efi`, part: 1},
		},
		order: []int{0, 1},
	}
}

// diskFirst is the entry ahead of the network boot in BootOrder, if any,
// and the commands that wrote the variables.
func (n *nvram) diskFirst() (nvramEntry, []string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, num := range n.order {
		e, ok := n.entry(num)
		if !ok {
			continue
		}
		if e.loader == "" {
			return nvramEntry{}, nil, false
		}
		return e, slices.Clone(n.writes), true
	}
	return nvramEntry{}, nil, false
}

func (n *nvram) entry(num int) (nvramEntry, bool) {
	for _, e := range n.entries {
		if e.num == num {
			return e, true
		}
	}
	return nvramEntry{}, false
}

// cmdEfibootmgr is efibootmgr against the host's NVRAM: it lists the boot
// entries, and -c, -B, -o change them (recorded as writes). A BIOS host
// has no EFI variables.
func (h *Host) cmdEfibootmgr(args []string) hostinit.Reply {
	if h.nvram == nil {
		return hostinit.Reply{Stderr: "EFI variables are not supported on this system.\n", Code: 2}
	}
	return h.nvram.efibootmgr(args)
}

func (n *nvram) efibootmgr(args []string) hostinit.Reply {
	fail := func(format string, a ...any) hostinit.Reply {
		return hostinit.Reply{Stderr: "efibootmgr: " + fmt.Sprintf(format, a...) + "\n", Code: 1}
	}
	var (
		create, remove, verbose bool
		order                   []int
		setOrder                bool
		bootNum                 = -1
		e                       = nvramEntry{label: "Linux", loader: `\EFI\debian\grubx64.efi`, disk: "/dev/sda", part: 1}
	)
	value := func(i *int) (string, bool) {
		if *i+1 >= len(args) {
			return "", false
		}
		*i++
		return args[*i], true
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, inline, hasInline := strings.Cut(a, "=")
		if !strings.HasPrefix(a, "--") {
			name, hasInline = a, false
		}
		arg := func() (string, bool) {
			if hasInline {
				return inline, true
			}
			return value(&i)
		}
		switch name {
		case "-v", "--verbose":
			verbose = true
		case "-c", "--create":
			create = true
		case "-B", "--delete-bootnum":
			remove = true
		case "-b", "--bootnum", "-d", "--disk", "-p", "--part", "-l", "--loader", "-L", "--label", "-o", "--bootorder":
			v, ok := arg()
			if !ok {
				return fail("option %s needs a value", name)
			}
			switch name {
			case "-b", "--bootnum":
				num, err := strconv.ParseUint(v, 16, 16)
				if err != nil {
					return fail("invalid boot number %q", v)
				}
				bootNum = int(num)
			case "-d", "--disk":
				e.disk = v
			case "-p", "--part":
				p, err := strconv.Atoi(v)
				if err != nil || p < 1 {
					return fail("invalid partition number %q", v)
				}
				e.part = p
			case "-l", "--loader":
				e.loader = strings.ReplaceAll(v, "/", `\`)
			case "-L", "--label":
				e.label = v
			case "-o", "--bootorder":
				setOrder = true
				for _, f := range strings.Split(v, ",") {
					num, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(f), "boot"), 16, 16)
					if err != nil {
						return fail("invalid boot order %q", v)
					}
					order = append(order, int(num))
				}
			}
		case "-q", "--quiet":
		default:
			return fail("option %s is not simulated (nixbook-sim): -c, -B, -b, -o, -d, -p, -l, -L and -v are", a)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	write := func() { n.writes = append(n.writes, "efibootmgr "+strings.Join(args, " ")) }
	switch {
	case create:
		num := bootNum
		if num < 0 {
			for num = 0; ; num++ {
				if _, taken := n.entry(num); !taken {
					break
				}
			}
		} else if _, taken := n.entry(num); taken {
			return fail("** Warning ** : Boot%04X has same label %s", num, e.label)
		}
		e.num = num
		n.entries = append(n.entries, e)
		// efibootmgr -c puts the new entry first, as a distribution's
		// installer wants it.
		n.order = append([]int{num}, slices.DeleteFunc(n.order, func(o int) bool { return o == num })...)
		write()
	case remove:
		if bootNum < 0 {
			return fail("You must specify a boot entry to delete (see the -b option).")
		}
		if _, ok := n.entry(bootNum); !ok {
			return fail("Could not delete variable: No such file or directory")
		}
		n.entries = slices.DeleteFunc(n.entries, func(x nvramEntry) bool { return x.num == bootNum })
		n.order = slices.DeleteFunc(n.order, func(o int) bool { return o == bootNum })
		write()
	case setOrder:
		for _, o := range order {
			if _, ok := n.entry(o); !ok {
				return fail("Invalid BootOrder order entry value%04X", o)
			}
		}
		n.order = order
		write()
	}
	return hostinit.Reply{Stdout: n.listLocked(verbose)}
}

// listLocked prints the variables as efibootmgr does.
func (n *nvram) listLocked(verbose bool) string {
	var b strings.Builder
	if len(n.order) > 0 {
		fmt.Fprintf(&b, "BootCurrent: %04X\n", n.order[0])
	}
	b.WriteString("Timeout: 1 seconds\n")
	var order []string
	for _, o := range n.order {
		order = append(order, fmt.Sprintf("%04X", o))
	}
	fmt.Fprintf(&b, "BootOrder: %s\n", strings.Join(order, ","))
	entries := slices.Clone(n.entries)
	slices.SortFunc(entries, func(a, b nvramEntry) int { return a.num - b.num })
	for _, e := range entries {
		fmt.Fprintf(&b, "Boot%04X* %s", e.num, e.label)
		if verbose {
			if e.loader == "" {
				b.WriteString("\tPciRoot(0x0)/Pci(0x1c,0x0)/Pci(0x0,0x0)/MAC(000000000000,0)/IPv4(0.0.0.00.0.0.0,0,0)")
			} else {
				fmt.Fprintf(&b, "\tHD(%d,GPT)/File(%s)", e.part, e.loader)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// nvramReasons says why an installed system that took the firmware's boot
// order does not count as booted: a disk entry ahead of the network boot
// makes the server skip OVH's netboot, so the API's rescue (and every
// later reinstall through it) is out of reach.
func (h *Host) nvramReasons() []string {
	if h.nvram == nil {
		return nil
	}
	e, writes, ok := h.nvram.diskFirst()
	if !ok {
		return nil
	}
	by := "by " + strings.Join(writes, "; ")
	if len(writes) == 0 {
		by = "as delivered"
	}
	return []string{fmt.Sprintf("the firmware's BootOrder starts with Boot%04X %q (%s), ahead of the network boot (changed %s): the server would skip OVH's netboot and the rescue the API asks for; set boot.loader.efi.canTouchEfiVariables = false", e.num, e.label, e.loader, by)}
}
