// Disk facts: lsblk's JSON, or sysfs where lsblk is missing, and the
// /dev/disk/by-id and by-path links.

package facts

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// lsblkDevice is one device of `lsblk -J -b`. Old lsblk versions print every
// value as a string, newer ones use numbers, booleans and null.
type lsblkDevice struct {
	Name       string        `json:"name"`
	Path       string        `json:"path"`
	Size       flexInt       `json:"size"`
	Model      string        `json:"model"`
	Rota       flexBool      `json:"rota"`
	Tran       string        `json:"tran"`
	Type       string        `json:"type"`
	FSType     string        `json:"fstype"`
	Label      string        `json:"label"`
	PartLabel  string        `json:"partlabel"`
	UUID       string        `json:"uuid"`
	Mountpoint string        `json:"mountpoint"`
	PTType     string        `json:"pttype"`
	Children   []lsblkDevice `json:"children"`
}

type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("size %s: %w", b, err)
	}
	*n = flexInt(v)
	return nil
}

type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	switch strings.Trim(string(b), `"`) {
	case "true", "1":
		*v = true
	}
	return nil
}

var loopPath = regexp.MustCompile(`^/dev/loop[0-9]+$`)

func parseDisks(f *Facts, get func(string) *section) error {
	// aliases maps a symlink target (/dev/loop3) to the disk-like name that
	// points at it (/dev/sda), which is how loop-backed disks are presented.
	aliases := map[string]string{}
	if s := get("dev-links"); s != nil {
		for name, target := range parseLsLinks(s.lines, "/dev") {
			aliases[target] = name
		}
	}
	byID := map[string][]string{}
	if s := get("by-id"); s != nil {
		for name, target := range parseLsLinks(s.lines, "/dev/disk/by-id") {
			byID[target] = append(byID[target], name)
		}
	}
	alias := func(p string) string {
		if a, ok := aliases[p]; ok {
			return a
		}
		return p
	}

	if s := get("lsblk"); s != nil {
		var doc struct {
			BlockDevices []lsblkDevice `json:"blockdevices"`
		}
		if err := json.Unmarshal([]byte(strings.Join(s.lines, "\n")), &doc); err != nil {
			return fmt.Errorf("parse facts: lsblk output: %w", err)
		}
		for _, d := range doc.BlockDevices {
			devPath := d.Path
			if devPath == "" {
				devPath = "/dev/" + d.Name
			}
			if !wholeDisk(d.Type, d.Name, alias(devPath), int64(d.Size)) {
				continue
			}
			disk := Disk{
				Path:       alias(devPath),
				SizeBytes:  int64(d.Size),
				Model:      strings.TrimSpace(d.Model),
				Rotational: bool(d.Rota),
				Transport:  d.Tran,
				ByID:       byID[devPath],
				PartTable:  d.PTType,
				FSType:     d.FSType,
			}
			for _, c := range d.Children {
				if c.Type != "part" {
					continue
				}
				cp := c.Path
				if cp == "" {
					cp = "/dev/" + c.Name
				}
				disk.Partitions = append(disk.Partitions, Partition{
					Path:       alias(cp),
					Number:     partNumber(c.Name),
					SizeBytes:  int64(c.Size),
					FSType:     c.FSType,
					Label:      c.Label,
					PartLabel:  c.PartLabel,
					UUID:       c.UUID,
					Mountpoint: c.Mountpoint,
				})
			}
			f.Disks = append(f.Disks, disk)
		}
	}

	if s := get("sysblock"); s != nil {
		var cur *Disk
		for _, line := range s.lines {
			fields := strings.Fields(line)
			if len(fields) < 4 {
				continue
			}
			switch fields[0] {
			case "disk":
				cur = nil
				name := fields[1]
				sectors, _ := strconv.ParseInt(fields[2], 10, 64)
				p := alias("/dev/" + name)
				typ := "disk"
				if strings.HasPrefix(name, "loop") {
					typ = "loop"
				}
				if !wholeDisk(typ, name, p, sectors*512) || virtualBlockName(name) {
					continue
				}
				d := Disk{
					Path:       p,
					SizeBytes:  sectors * 512,
					Model:      strings.Join(fields[4:], " "),
					Rotational: fields[3] == "1",
					ByID:       byID["/dev/"+name],
				}
				if strings.HasPrefix(name, "nvme") {
					d.Transport = "nvme"
				}
				f.Disks = append(f.Disks, d)
				cur = &f.Disks[len(f.Disks)-1]
			case "part":
				if cur == nil {
					continue
				}
				n, _ := strconv.Atoi(fields[2])
				sectors, _ := strconv.ParseInt(fields[3], 10, 64)
				cur.Partitions = append(cur.Partitions, Partition{
					Path:      alias("/dev/" + fields[1]),
					Number:    n,
					SizeBytes: sectors * 512,
				})
			}
		}
	}

	// Mountpoints are not in the sysfs fallback; /proc/mounts has them.
	if s := get("mounts"); s != nil {
		ms := parseMounts(s.lines)
		for i := range f.Disks {
			for j := range f.Disks[i].Partitions {
				p := &f.Disks[i].Partitions[j]
				if p.Mountpoint != "" {
					continue
				}
				for _, m := range ms {
					if m.Device == p.Path {
						p.Mountpoint = m.Mountpoint
						break
					}
				}
			}
		}
	}

	if s := get("disk-drivers"); s != nil {
		for _, line := range s.lines {
			name, driver, ok := strings.Cut(strings.TrimSpace(line), " ")
			if !ok || driver == "" {
				continue
			}
			for i := range f.Disks {
				if f.Disks[i].Path == alias("/dev/"+name) {
					f.Disks[i].Driver = driver
				}
			}
		}
	}

	slices.SortStableFunc(f.Disks, func(a, b Disk) int { return naturalCompare(a.Path, b.Path) })
	for i := range f.Disks {
		d := &f.Disks[i]
		slices.Sort(d.ByID)
		slices.SortStableFunc(d.Partitions, func(a, b Partition) int { return a.Number - b.Number })
	}
	return nil
}

// wholeDisk decides which block devices are disks nixbook may install on:
// lsblk type "disk" except RAM-backed ones and empty ones (card readers
// without a card), and type "loop" only when presented under a disk-like
// name (not /dev/loopN), as loop-backed test servers present /dev/sda.
func wholeDisk(typ, name, devPath string, size int64) bool {
	if size <= 0 {
		return false
	}
	switch typ {
	case "disk":
		return !strings.HasPrefix(name, "zram") && !strings.HasPrefix(name, "ram")
	case "loop":
		return !loopPath.MatchString(devPath)
	}
	return false
}

// virtualBlockName reports sysfs block names that are not disks, for the
// fallback that has no lsblk TYPE to go by.
func virtualBlockName(name string) bool {
	for _, p := range []string{"dm-", "md", "sr", "fd", "nbd", "zd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// partNumber is the trailing number of a partition's name: sda1, nvme0n1p2,
// mmcblk0p3, loop0p1.
func partNumber(name string) int {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(name[i:])
	return n
}

// parseLsLinks reads `ls -l` lines and returns each symlink's absolute path
// and resolved target; relative targets resolve against dir.
func parseLsLinks(lines []string, dir string) map[string]string {
	out := map[string]string{}
	for _, line := range lines {
		left, target, ok := strings.Cut(line, " -> ")
		if !ok {
			continue
		}
		fields := strings.Fields(left)
		if len(fields) == 0 {
			continue
		}
		name := fields[len(fields)-1]
		if !strings.HasPrefix(name, "/") {
			name = path.Join(dir, name)
		}
		target = strings.TrimSpace(target)
		if !strings.HasPrefix(target, "/") {
			target = path.Join(path.Dir(name), target)
		}
		out[name] = path.Clean(target)
	}
	return out
}

// naturalCompare orders strings with embedded numbers numerically, so
// nvme2n1 sorts before nvme10n1 and nvme0n1p2 before nvme0n1p10.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		ad, bd := isDigit(a[0]), isDigit(b[0])
		if ad && bd {
			i, j := digitRun(a), digitRun(b)
			na, nb := strings.TrimLeft(a[:i], "0"), strings.TrimLeft(b[:j], "0")
			if len(na) != len(nb) {
				return len(na) - len(nb)
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitRun(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
