package facts

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// section is one "==> NAME [ARG]" block of the script's output.
type section struct {
	name, arg string
	lines     []string
}

// Parse builds Facts from the output of Script.
func Parse(out []byte) (*Facts, error) {
	secs := splitSections(out)
	if len(secs) == 0 {
		return nil, errors.New("parse facts: no sections in output (not the facts script's output?)")
	}
	f := &Facts{}
	get := func(name string) *section {
		for i := range secs {
			if secs[i].name == name {
				return &secs[i]
			}
		}
		return nil
	}
	first := func(name string) string {
		if s := get(name); s != nil && len(s.lines) > 0 {
			return strings.TrimSpace(s.lines[0])
		}
		return ""
	}
	if get("hostname") == nil || get("boot_id") == nil {
		return nil, errors.New("parse facts: output lacks the hostname or boot_id section (truncated?)")
	}

	f.Hostname = first("hostname")
	if s := get("os-release"); s != nil {
		f.OS = parseOSRelease(s.lines)
	}
	f.Kernel = first("kernel")
	f.Arch = first("arch")
	f.BootID = first("boot_id")
	f.Firmware = first("firmware")
	if v := first("memtotal_kb"); v != "" {
		kb, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse facts: MemTotal %q: %w", v, err)
		}
		f.MemoryMB = kb / 1024
	}
	if v := first("cpus"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("parse facts: cpu count %q: %w", v, err)
		}
		f.CPUs = n
	}
	f.Rescue = IsRescue(f.Hostname, f.OS)

	parseNetwork(f, secs, get)
	if s := get("resolv"); s != nil {
		f.Nameservers = parseResolv(s.lines)
	}
	if err := parseDisks(f, get); err != nil {
		return nil, err
	}
	if s := get("mounts"); s != nil {
		f.Mounts = parseMounts(s.lines)
	}
	normalize(f)
	return f, nil
}

func splitSections(out []byte) []section {
	var secs []section
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if rest, ok := strings.CutPrefix(line, "==> "); ok {
			name, arg, _ := strings.Cut(strings.TrimSpace(rest), " ")
			secs = append(secs, section{name: name, arg: arg})
			continue
		}
		if len(secs) == 0 {
			continue // anything before the first header (a login banner) is noise
		}
		s := &secs[len(secs)-1]
		s.lines = append(s.lines, line)
	}
	for i := range secs {
		l := secs[i].lines
		for len(l) > 0 && strings.TrimSpace(l[len(l)-1]) == "" {
			l = l[:len(l)-1]
		}
		secs[i].lines = l
	}
	return secs
}

// normalize turns nil lists into empty ones so the JSON and template views
// always see lists.
func normalize(f *Facts) {
	if f.Interfaces == nil {
		f.Interfaces = []Interface{}
	}
	for i := range f.Interfaces {
		in := &f.Interfaces[i]
		if in.IPv4 == nil {
			in.IPv4 = []string{}
		}
		if in.IPv6 == nil {
			in.IPv6 = []string{}
		}
		if in.IPv4Dynamic == nil {
			in.IPv4Dynamic = []string{}
		}
	}
	if f.Nameservers == nil {
		f.Nameservers = []string{}
	}
	if f.Disks == nil {
		f.Disks = []Disk{}
	}
	for i := range f.Disks {
		d := &f.Disks[i]
		if d.ByID == nil {
			d.ByID = []string{}
		}
		if d.Partitions == nil {
			d.Partitions = []Partition{}
		}
		// In partition-number order, whatever order the tool listed them in.
		sort.SliceStable(d.Partitions, func(i, j int) bool { return d.Partitions[i].Number < d.Partitions[j].Number })
	}
	if f.Mounts == nil {
		f.Mounts = []Mount{}
	}
}
