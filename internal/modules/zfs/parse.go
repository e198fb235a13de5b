package zfs

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
)

// topVdev is a top-level vdev as ZFS reports it.
type topVdev struct {
	kind    string   // "" for a device on its own, mirror, raidz1, ...
	devices []string // paths as reported (full with -P, else relative to /dev)
}

var vdevNameRE = regexp.MustCompile(`^(mirror|raidz[123]?|draid[123]?[^-]*)-[0-9]+$`)

// parseConfig reads the indented config tree that `zpool status` and
// `zpool import` print for a pool: the pool's line, its top-level vdevs, and
// their devices. Log, cache, spare and special sections are left out: they
// are not part of the data layout the task describes.
func parseConfig(lines []string, pool string) ([]topVdev, error) {
	var out []topVdev
	inPool := false
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			if inPool {
				break
			}
			continue
		}
		body := strings.TrimLeft(l, "\t")
		depth := (len(body) - len(strings.TrimLeft(body, " "))) / 2
		fields := strings.Fields(body)
		name := fields[0]
		if depth == 0 {
			if name == "NAME" {
				continue
			}
			if inPool {
				break // logs, cache, spares, special, dedup
			}
			inPool = name == pool
			continue
		}
		if !inPool {
			continue
		}
		// A missing device shows as a number and "was /dev/...".
		for i, f := range fields {
			if f == "was" && i+1 < len(fields) {
				name = fields[i+1]
			}
		}
		switch {
		case depth == 1:
			m := vdevNameRE.FindStringSubmatch(name)
			if m == nil {
				out = append(out, topVdev{devices: []string{name}})
				continue
			}
			kind := m[1]
			if kind == "raidz" {
				kind = "raidz1"
			}
			out = append(out, topVdev{kind: kind})
		case len(out) == 0 || out[len(out)-1].kind == "":
			return nil, fmt.Errorf("unexpected line in the config of pool %s: %q", pool, strings.TrimSpace(l))
		case strings.HasPrefix(name, "replacing-") || strings.HasPrefix(name, "spare-"):
			// Their leaves follow one level deeper.
		default:
			out[len(out)-1].devices = append(out[len(out)-1].devices, name)
		}
	}
	if !inPool {
		return nil, fmt.Errorf("pool %s not found in the config", pool)
	}
	return out, nil
}

// statusConfig returns the config lines of `zpool status` output.
func statusConfig(out string) []string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "config:" {
			return lines[i+1:]
		}
	}
	return nil
}

// importable is one pool `zpool import` offers.
type importable struct {
	name, id, state, status, action string
	config                          []string
}

// parseImport reads the listing of `zpool import` without a pool name.
func parseImport(out string) []importable {
	var pools []importable
	var cur *importable
	inConfig := false
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		key, val, isKey := strings.Cut(t, ":")
		if isKey && !strings.HasPrefix(l, "\t") && !strings.Contains(key, " ") {
			val = strings.TrimSpace(val)
			switch key {
			case "pool":
				pools = append(pools, importable{name: val})
				cur = &pools[len(pools)-1]
				inConfig = false
				continue
			case "config":
				inConfig = true
				continue
			}
			if cur == nil {
				continue
			}
			inConfig = false
			switch key {
			case "id":
				cur.id = val
			case "state":
				cur.state = val
			case "status":
				cur.status = val
			case "action":
				cur.action = val
			}
			continue
		}
		if cur == nil {
			continue
		}
		if inConfig && strings.HasPrefix(l, "\t") {
			cur.config = append(cur.config, l)
		} else if !inConfig && t != "" && strings.HasPrefix(l, "\t") {
			// Continuation lines of status or action.
			if cur.action != "" {
				cur.action += " " + t
			} else if cur.status != "" {
				cur.status += " " + t
			}
		}
	}
	return pools
}

// parseExport reads `blkid -p -o export` output, keeping what describes
// the content: the device's name and its partition table entry are not.
func parseExport(out string) map[string]string {
	kv := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if ok && k != "DEVNAME" && !strings.HasPrefix(k, "PART_ENTRY_") {
			kv[k] = v
		}
	}
	return kv
}

// lsblkEntry is one line of `lsblk -n -r -p -o NAME,TYPE,MOUNTPOINT`.
type lsblkEntry struct {
	name, typ, mountpoint string
}

func parseLsblk(out string) []lsblkEntry {
	var es []lsblkEntry
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimRight(l, "\r"), " ")
		if len(f) < 2 || f[0] == "" {
			continue
		}
		e := lsblkEntry{name: hostfs.Unescape(f[0]), typ: f[1]}
		if len(f) > 2 {
			e.mountpoint = hostfs.Unescape(f[2])
		}
		es = append(es, e)
	}
	return es
}

// lines splits command output into its non-empty lines.
func lines(out []byte) []string {
	var ls []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimRight(l, "\r"); strings.TrimSpace(l) != "" {
			ls = append(ls, l)
		}
	}
	return ls
}

var sizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)([KMGTPE]?)(?:i?B)?$`)

// sameValue compares a property value the task asks for with the raw value
// `zfs get -p` or `zpool get -p` reports: sizes as bytes, aliases resolved.
func sameValue(prop, want, got string) bool {
	if strings.EqualFold(want, got) {
		return true
	}
	alias := map[string]string{
		"acltype=posixacl": "posix", "acltype=noacl": "off", "acltype=posix": "posix",
		"dedup=on": "sha256", "checksum=on": "fletcher4",
	}
	if a, ok := alias[prop+"="+strings.ToLower(want)]; ok && strings.EqualFold(a, got) {
		return true
	}
	if strings.EqualFold(want, "none") && got == "0" {
		return true
	}
	if m := sizeRE.FindStringSubmatch(strings.ToUpper(want)); m != nil {
		n, err := strconv.ParseFloat(m[1], 64)
		g, gerr := strconv.ParseFloat(got, 64)
		if err == nil && gerr == nil {
			shift := strings.Index("KMGTPE", m[2]) + 1
			if m[2] == "" {
				shift = 0
			}
			for range shift {
				n *= 1024
			}
			return int64(n) == int64(g)
		}
	}
	return false
}
