package partition

import (
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/nixbook/nixbook/internal/modules/internal/disk"
)

// Partition types.
const (
	typeExt4     = "ext4"
	typeXFS      = "xfs"
	typeVFAT     = "vfat"
	typeESP      = "esp"
	typeSwap     = "swap"
	typeZFS      = "zfs"
	typeBIOSGrub = "bios_grub"
	typeNone     = "none"
)

// typeInfo is what a partition type means for parted, mkfs and mount.
type typeInfo struct {
	partedFS string // parted's fs-type hint, which sets the partition type id
	mkfs     func(label, dev string) []string
	fsType   string // what blkid reports once formatted; "" when not formatted
	mountFS  string // mount -t
	minMiB   int64
	maxLabel int // longest label the filesystem takes; 0: no label
}

var types = map[string]typeInfo{
	typeExt4: {partedFS: "ext4", fsType: "ext4", mountFS: "ext4", minMiB: 8, maxLabel: 16,
		mkfs: func(l, d string) []string { return withLabel([]string{"mkfs.ext4", "-F"}, "-L", l, d) }},
	typeXFS: {partedFS: "xfs", fsType: "xfs", mountFS: "xfs", minMiB: 300, maxLabel: 12,
		mkfs: func(l, d string) []string { return withLabel([]string{"mkfs.xfs", "-f"}, "-L", l, d) }},
	typeVFAT: {partedFS: "fat32", fsType: "vfat", mountFS: "vfat", minMiB: 36, maxLabel: 11,
		mkfs: func(l, d string) []string { return withLabel([]string{"mkfs.vfat", "-F", "32"}, "-n", l, d) }},
	typeESP: {partedFS: "fat32", fsType: "vfat", mountFS: "vfat", minMiB: 36, maxLabel: 11,
		mkfs: func(l, d string) []string { return withLabel([]string{"mkfs.vfat", "-F", "32"}, "-n", l, d) }},
	typeSwap: {partedFS: "linux-swap", fsType: "swap", minMiB: 1, maxLabel: 15,
		mkfs: func(l, d string) []string { return withLabel([]string{"mkswap"}, "-L", l, d) }},
	typeZFS:      {minMiB: 64},
	typeBIOSGrub: {minMiB: 1},
	typeNone:     {minMiB: 1},
}

func withLabel(argv []string, flag, label, dev string) []string {
	if label != "" {
		argv = append(argv, flag, label)
	}
	return append(argv, dev)
}

func typeNames() string {
	return "ext4, xfs, vfat, esp, swap, zfs, bios_grub or none"
}

// size is a partition size: whole MiB, a share of the disk, or the rest.
type size struct {
	mib  int64
	pct  float64
	rest bool
}

var sizeRe = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z%]*)$`)

// parseSize reads 512MiB, 20GiB, 1TiB, 512M, 20G, 1T (binary units all),
// 10% (of the disk) or rest.
func parseSize(s string) (size, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "rest") {
		return size{rest: true}, nil
	}
	m := sizeRe.FindStringSubmatch(s)
	if m == nil {
		return size{}, fmt.Errorf("size %q: want 512MiB, 20GiB, 10%% or rest", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return size{}, fmt.Errorf("size %q: %w", s, err)
	}
	var mult float64
	switch strings.ToLower(m[2]) {
	case "%":
		if v <= 0 || v >= 100 {
			return size{}, fmt.Errorf("size %q: a share must be above 0%% and below 100%% (write rest for what is left)", s)
		}
		return size{pct: v}, nil
	case "m", "mib":
		mult = 1
	case "g", "gib":
		mult = 1024
	case "t", "tib":
		mult = 1024 * 1024
	case "":
		return size{}, fmt.Errorf("size %q needs a unit: MiB, GiB, TiB or %%", s)
	default:
		return size{}, fmt.Errorf("size %q: unknown unit %q (want MiB, GiB, TiB, M, G, T or %%)", s, m[2])
	}
	mib := v * mult
	if mib != math.Trunc(mib) {
		return size{}, fmt.Errorf("size %q is not a whole number of MiB", s)
	}
	if mib < 1 {
		return size{}, fmt.Errorf("size %q: a partition needs at least 1MiB", s)
	}
	return size{mib: int64(mib)}, nil
}

func (s size) String() string {
	switch {
	case s.rest:
		return "rest"
	case s.pct > 0:
		return strconv.FormatFloat(s.pct, 'f', -1, 64) + "%"
	}
	return disk.Human(s.mib * disk.MiB)
}

// part is one validated partition of a layout.
type part struct {
	Name        string
	Size        size
	Type        string
	Label       string
	Mount       string
	Options     []string
	EveryDisk   bool
	OutsideRoot bool
	Encrypt     bool // a LUKS2 volume under the filesystem
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)

// layout is what every disk of the task gets.
type layout struct {
	Label string // gpt or msdos
	Parts []part
}

// validate checks a layout on its own; firmware rules come with the host.
func (l *layout) validate(ndisks int) error {
	if len(l.Parts) == 0 {
		return errors.New("the layout has no partitions")
	}
	if l.Label != "gpt" && l.Label != "msdos" {
		return fmt.Errorf("label %q: want gpt or msdos", l.Label)
	}
	if l.Label == "msdos" && len(l.Parts) > 4 {
		return fmt.Errorf("an msdos table holds at most 4 primary partitions and the layout has %d (extended partitions are not supported): use label: gpt", len(l.Parts))
	}
	names := map[string]bool{}
	mounts := map[string]string{}
	rest, pct := 0, 0.0
	for _, p := range l.Parts {
		what := fmt.Sprintf("partition %q", p.Name)
		if !nameRe.MatchString(p.Name) || len(p.Name)+len(suffix(ndisks-1)) > 36 {
			return fmt.Errorf("%s: a name is up to 36 letters, digits and ._+- (GPT's limit, with the -N suffix of later disks)", what)
		}
		if names[p.Name] {
			return fmt.Errorf("%s is named twice", what)
		}
		names[p.Name] = true
		info, ok := types[p.Type]
		if !ok {
			return fmt.Errorf("%s: type %q: want %s", what, p.Type, typeNames())
		}
		if p.Type == typeBIOSGrub && l.Label != "gpt" {
			return fmt.Errorf("%s: bios_grub partitions exist only on gpt; an msdos disk keeps GRUB after the MBR", what)
		}
		switch {
		case p.Size.rest:
			rest++
		case p.Size.pct > 0:
			pct += p.Size.pct
		case p.Size.mib < info.minMiB:
			return fmt.Errorf("%s: %s is too small for %s (at least %s)", what, p.Size, p.Type, disk.Human(info.minMiB*disk.MiB))
		}
		if p.Label != "" {
			if info.maxLabel == 0 {
				return fmt.Errorf("%s: a %s partition has no filesystem to label (the GPT name is %q)", what, p.Type, p.Name)
			}
			if !nameRe.MatchString(p.Label) {
				return fmt.Errorf("%s: label %q: use letters, digits and ._+-", what, p.Label)
			}
			if n := len(p.Label) + len(suffix(ndisks-1)); n > info.maxLabel {
				return fmt.Errorf("%s: label %q is too long for %s (%d characters at most, counting the -N suffix of later disks)", what, p.Label, p.Type, info.maxLabel)
			}
		}
		if p.Encrypt {
			switch {
			case p.Type != typeExt4 && p.Type != typeXFS:
				return fmt.Errorf("%s: encrypt puts ext4 or xfs in a LUKS volume, not %s (ZFS encrypts its datasets itself; the stock install.yml encrypts its root with fs_layout: ext4)", what, p.Type)
			case p.EveryDisk || p.OutsideRoot:
				return fmt.Errorf("%s: an encrypted partition is on the first disk only, under root (no every_disk, no outside_root)", what)
			case p.Mount == "/boot" || strings.HasPrefix(p.Mount, "/boot/"):
				return fmt.Errorf("%s: GRUB reads %s before anything is unlocked: it cannot be encrypted", what, p.Mount)
			}
		}
		if p.Mount == "" {
			if len(p.Options) > 0 {
				return fmt.Errorf("%s: mount_options without mount", what)
			}
			if p.OutsideRoot {
				return fmt.Errorf("%s: outside_root without mount", what)
			}
			continue
		}
		if info.mountFS == "" {
			return fmt.Errorf("%s: a %s partition cannot be mounted (swap is turned on by itself; zfs datasets are mounted by the zfs module)", what, p.Type)
		}
		if !path.IsAbs(p.Mount) || path.Clean(p.Mount) != p.Mount {
			return fmt.Errorf("%s: mount %q must be a clean absolute path", what, p.Mount)
		}
		if p.Mount == "/" && (p.EveryDisk || p.OutsideRoot) {
			return fmt.Errorf("%s: / is mounted once, under root", what)
		}
		for k := 0; k < ndisks; k++ {
			if k > 0 && !p.EveryDisk {
				break
			}
			m := p.Mount + suffix(k)
			if p.OutsideRoot {
				m = "outside:" + m
			}
			if other, dup := mounts[m]; dup {
				return fmt.Errorf("%s: mount %s is taken by partition %q", what, strings.TrimPrefix(m, "outside:"), other)
			}
			mounts[m] = p.Name
		}
		for _, o := range p.Options {
			if o == "" || strings.ContainsAny(o, " \t\n") {
				return fmt.Errorf("%s: mount option %q", what, o)
			}
		}
	}
	if rest > 1 {
		return errors.New("only one partition can take the rest of the disk")
	}
	if pct >= 100 {
		return fmt.Errorf("the partitions' shares add up to %g%%: keep them below 100%%", pct)
	}
	return nil
}

// firmwareRules checks what the host's firmware needs to boot from the
// layout; host is the inventory name, for messages.
func (l *layout) firmwareRules(firmware string) error {
	has := func(typ string) bool {
		for _, p := range l.Parts {
			if p.Type == typ {
				return true
			}
		}
		return false
	}
	switch firmware {
	case "bios":
		if l.Label == "gpt" && !has(typeBIOSGrub) {
			return errors.New("GPT on a BIOS host needs a bios_grub partition for GRUB: add {name: bios_grub, size: 1MiB, type: bios_grub} as the first partition, or use label: msdos")
		}
	case "uefi":
		if !has(typeESP) {
			return errors.New("the host boots with UEFI and the layout has no EFI system partition: add {name: ESP, size: 512MiB, type: esp, mount: /boot}")
		}
	default:
		return fmt.Errorf("unknown firmware %q: want bios or uefi", firmware)
	}
	return nil
}

// suffix tells later disks' names, labels and mounts apart: "" for the
// first disk (k = 0), "-2" for the second.
func suffix(k int) string {
	if k <= 0 {
		return ""
	}
	return "-" + strconv.Itoa(k+1)
}

// slot is one partition placed on one disk.
type slot struct {
	part     *part
	number   int
	startMiB int64
	endMiB   int64 // exclusive
	name     string
	label    string
}

func (s slot) sizeMiB() int64 { return s.endMiB - s.startMiB }

// Partitions start at 1 MiB, which is aligned for every disk and leaves
// GRUB room after an MBR. The last MiB stays free for GPT's backup header
// and because parted refuses an end at the disk's very last sector.
const (
	leadMiB = 1
	tailMiB = 1
)

// tooSmall reports a layout that does not fit a disk.
type tooSmall struct {
	needBytes int64
	why       string // when a single partition is the problem
}

// place lays the layout out on disk k of diskBytes.
func (l *layout) place(k int, diskBytes int64) ([]slot, *tooSmall) {
	diskMiB := diskBytes / disk.MiB
	usable := diskMiB - leadMiB - tailMiB
	var fixed, restMin int64
	var pct float64
	sizes := make([]int64, len(l.Parts))
	for i, p := range l.Parts {
		switch {
		case p.Size.rest:
			restMin = types[p.Type].minMiB
		case p.Size.pct > 0:
			pct += p.Size.pct
			sizes[i] = int64(math.Floor(float64(diskMiB) * p.Size.pct / 100))
			fixed += sizes[i]
		default:
			sizes[i] = p.Size.mib
			fixed += p.Size.mib
		}
	}
	if fixed+restMin > usable {
		var fixedOnly int64
		for i, p := range l.Parts {
			if !p.Size.rest && p.Size.pct == 0 {
				fixedOnly += sizes[i]
			}
		}
		need := float64(leadMiB+tailMiB+fixedOnly+restMin) / (1 - pct/100)
		return nil, &tooSmall{needBytes: int64(math.Ceil(need)) * disk.MiB}
	}
	slots := make([]slot, len(l.Parts))
	start := int64(leadMiB)
	for i := range l.Parts {
		p := &l.Parts[i]
		n := sizes[i]
		if p.Size.rest {
			n = usable - fixed
		}
		if min := types[p.Type].minMiB; n < min {
			return nil, &tooSmall{why: fmt.Sprintf("%s of %s makes partition %q %s, and %s needs at least %s",
				p.Size, disk.Human(diskBytes), p.Name, disk.Human(n*disk.MiB), p.Type, disk.Human(min*disk.MiB))}
		}
		slots[i] = slot{part: p, number: i + 1, startMiB: start, endMiB: start + n, name: p.Name + suffix(k)}
		if p.Label != "" {
			slots[i].label = p.Label + suffix(k)
		}
		start += n
	}
	if l.Label == "msdos" && start*disk.MiB > msdosLimit {
		return nil, &tooSmall{why: fmt.Sprintf("an msdos table addresses only the first 2 TiB and the layout ends at %s: use label: gpt", disk.Human(start*disk.MiB))}
	}
	return slots, nil
}

// msdosLimit is the end of what 32-bit sector numbers address.
const msdosLimit = int64(1<<32) * 512

// presetNames lists the stock layouts.
const presetNames = "iso or zfs"

// preset returns a stock layout for a table label and firmware:
//
//   - iso, the 2015 rescue and ISO path: nixos 30 GiB ext4 at /, home (the
//     rest) ext4 at /home, swap 2 GiB, and nixos-rescue 2 GiB ext4 mounted
//     outside the target at /root/rescue to unpack the ISO's store into;
//   - zfs, the 2024 kexec path: boot 512 MiB ext4 at /boot (on every disk,
//     /boot-2 and so on, for mirrored boots), and rpool (the rest) for the
//     zfs module.
//
// On GPT with BIOS a 1 MiB bios_grub partition comes first; with UEFI a
// 512 MiB ESP does, mounted at /boot (and the zfs preset's boot partition
// becomes that ESP).
func preset(name, label, firmware string) ([]part, error) {
	var parts []part
	switch name {
	case "iso":
		if firmware == "uefi" {
			parts = append(parts, part{Name: "ESP", Size: size{mib: 512}, Type: typeESP, Label: "ESP", Mount: "/boot"})
		}
		parts = append(parts,
			part{Name: "nixos", Size: size{mib: 30 * 1024}, Type: typeExt4, Label: "nixos", Mount: "/"},
			part{Name: "home", Size: size{rest: true}, Type: typeExt4, Label: "home", Mount: "/home"},
			part{Name: "swap", Size: size{mib: 2 * 1024}, Type: typeSwap, Label: "swap"},
			part{Name: "nixos-rescue", Size: size{mib: 2 * 1024}, Type: typeExt4, Label: "nixos-rescue", Mount: "/root/rescue", OutsideRoot: true},
		)
	case "zfs":
		if firmware == "uefi" {
			parts = append(parts, part{Name: "boot", Size: size{mib: 512}, Type: typeESP, Label: "boot", Mount: "/boot", EveryDisk: true})
		} else {
			parts = append(parts, part{Name: "boot", Size: size{mib: 512}, Type: typeExt4, Label: "boot", Mount: "/boot", EveryDisk: true})
		}
		parts = append(parts, part{Name: "rpool", Size: size{rest: true}, Type: typeZFS})
	default:
		return nil, fmt.Errorf("preset %q: want %s", name, presetNames)
	}
	if label == "gpt" && firmware == "bios" {
		parts = append([]part{{Name: "bios_grub", Size: size{mib: 1}, Type: typeBIOSGrub}}, parts...)
	}
	return parts, nil
}
