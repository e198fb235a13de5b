// Package partition lays out disks declaratively: a partition table, the
// partitions with their filesystems and labels, and the mounts under the
// target root with swap on. A disk that already holds the layout is only
// mounted; a disk holding anything else is refused unless the task says
// wipe: true; a disk the running system uses is always refused. Everything
// is checked against the host before the first byte is written, and a run
// cut short anywhere can simply be run again.
//
// Several disks get the same layout. Only the first disk's filesystems are
// mounted, except partitions marked every_disk (boot partitions for
// mirrored boots, swap), which later disks mount at the same path with a
// -2, -3 suffix; later disks' GPT names and labels get the same suffix so
// that /dev/disk/by-label and by-partlabel stay unambiguous.
//
// A layout without a / partition (the root is a ZFS dataset) cannot mount
// its other filesystems before something mounts the root: they are left
// unmounted, and said so, until a rerun of the task finds the root mounted.
//
// The task's output (register) tells the tasks after it what was made:
// disks, partitions by name with their kernel and by-id paths, paths (the
// stable path of each named partition on every disk, for the zfs module's
// devices), boot_devices (GRUB's disks), mounts, swaps, and mirrored_boots
// for several disks with an every_disk /boot.
package partition

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
)

// PartitionArgs describe one partition.
type PartitionArgs struct {
	Name         string            `yaml:"name"`
	Size         string            `yaml:"size"`
	Type         string            `yaml:"type"`
	Label        string            `yaml:"label"`
	Mount        string            `yaml:"mount"`
	MountOptions modkit.StringList `yaml:"mount_options"`
	EveryDisk    bool              `yaml:"every_disk"`
	OutsideRoot  bool              `yaml:"outside_root"`
	Encrypt      bool              `yaml:"encrypt"`
}

// Args are the arguments of `partition`.
type Args struct {
	Disks       modkit.StringList `yaml:"disks" required:"" doc:"the disks to lay out, as /dev/sda, /dev/nvme0n1 or /dev/disk/by-id/... paths; every disk gets the same layout"`
	Label       string            `yaml:"label" default:"gpt" doc:"the partition table: gpt or msdos (at most 4 partitions, disks up to 2 TiB)"`
	Preset      string            `yaml:"preset" doc:"a stock layout: iso (nixos 30GiB ext4 /, home rest ext4 /home, swap 2GiB, nixos-rescue 2GiB ext4 at /root/rescue outside root) or zfs (boot 512MiB ext4 /boot on every disk, rpool rest zfs); bios_grub (GPT on BIOS) or an ESP (UEFI) is added first; partitions then change the preset's partitions of the same name"`
	Partitions  []PartitionArgs   `yaml:"partitions" doc:"the partitions in disk order, each {name, size, type, label, mount, mount_options, every_disk, outside_root, encrypt}: name is the GPT partition name and the key in the output; size is 512MiB, 20GiB, 1TiB (M, G, T are binary too), 10% of the disk, or rest (one partition at most); type is ext4, xfs, vfat, esp, swap, zfs (left for the zfs module), bios_grub or none; label is the filesystem label; mount is the path in the installed system, mounted under root (or as is with outside_root: true); every_disk mounts or swaps on the partition of every disk, later disks at mount-2, mount-3 (only the first disk's are mounted otherwise); later disks' names and labels get the same -2, -3 suffixes; encrypt puts the filesystem (ext4 or xfs, one disk, not /boot) in a LUKS2 volume keyed by luks_key_file"`
	Root        string            `yaml:"root" default:"/mnt" doc:"where the installed system's root is mounted"`
	Wipe        bool              `yaml:"wipe" doc:"erase disks and partitions that hold other partitions, filesystems or RAID/ZFS signatures; disks the running system uses are refused all the same"`
	Firmware    string            `yaml:"firmware" default:"auto" doc:"auto (from facts), bios or uefi: BIOS with GPT needs a bios_grub partition, UEFI an esp"`
	Mount       bool              `yaml:"mount" default:"true" doc:"mount the filesystems under root and turn swap on; false only creates them"`
	LUKSKeyFile string            `yaml:"luks_key_file" doc:"a file on the controller holding the key of the partitions with encrypt: true (a LUKS2 volume under their ext4 or xfs, opened as /dev/mapper/NAME); the key goes to the host only as uploaded files (/run/nixbook/luks.key, and ROOT/etc/secrets/initrd/NAME.key for the installed system's initrd), never on a command line or in a log"`
}

// Spec is the `partition` module.
var Spec = modules.Spec{
	Name:    "partition",
	Summary: "Partition, format and mount disks from a declarative layout; refuses disks holding other data unless wipe: true.",
	Args:    Args{},
	Example: `- name: Lay out the disk as the 2015 install did
  partition:
    disks: "{{ disks }}"
    label: msdos
    partitions:
      - {name: nixos, size: 30GiB, type: ext4, label: nixos, mount: /}
      - {name: home, size: rest, type: ext4, label: home, mount: /home}
      - {name: swap, size: 2GiB, type: swap, label: swap}
      - {name: nixos-rescue, size: 2GiB, type: ext4, label: nixos-rescue, mount: /root/rescue, outside_root: true}
    wipe: "{{ wipe | default(false) }}"

- name: Boot partitions on both disks, the rest for ZFS
  partition:
    disks: [/dev/disk/by-id/ata-HGST_HUS726020ALA610_K5H0A1B2, /dev/disk/by-id/ata-HGST_HUS726020ALA610_K5H0C3D4]
    preset: zfs
  register: layout
`,
	New: modkit.New(newModule),
}

func newModule(a Args) (modules.Module, error) {
	seen := map[string]bool{}
	for i, dk := range a.Disks {
		dk = strings.TrimSpace(dk)
		if !path.IsAbs(dk) || !strings.HasPrefix(path.Clean(dk), "/dev/") {
			return nil, fmt.Errorf("disks: %q is not a device path such as /dev/sda or /dev/disk/by-id/...", dk)
		}
		dk = path.Clean(dk)
		if seen[dk] {
			return nil, fmt.Errorf("disks: %s is listed twice", dk)
		}
		seen[dk] = true
		a.Disks[i] = dk
	}
	if !path.IsAbs(a.Root) {
		return nil, fmt.Errorf("root %q must be an absolute path", a.Root)
	}
	a.Root = path.Clean(a.Root)
	switch a.Firmware {
	case "auto", "bios", "uefi":
	default:
		return nil, fmt.Errorf("firmware %q: want auto, bios or uefi", a.Firmware)
	}
	if a.Label != "gpt" && a.Label != "msdos" {
		return nil, fmt.Errorf("label %q: want gpt or msdos", a.Label)
	}
	if a.Preset == "" && len(a.Partitions) == 0 {
		return nil, errors.New("give partitions or a preset (" + presetNames + ")")
	}
	m := &module{args: a}
	// What does not depend on the host is checked now, so a playbook with a
	// wrong layout fails when it loads. Only a preset differs between
	// firmwares; with auto, Check tries it again with the host's.
	fw := a.Firmware
	if fw == "auto" {
		fw = "bios"
	}
	l, err := m.layout(fw)
	if err != nil {
		return nil, err
	}
	if a.Firmware != "auto" {
		if err := l.firmwareRules(fw); err != nil {
			return nil, err
		}
	}
	return m, nil
}

type module struct {
	args Args
}

// layout builds the validated layout for a firmware.
func (m *module) layout(firmware string) (*layout, error) {
	a := m.args
	l := &layout{Label: a.Label}
	if a.Preset != "" {
		parts, err := preset(a.Preset, a.Label, firmware)
		if err != nil {
			return nil, err
		}
		if l.Parts, err = override(a.Preset, parts, a.Partitions); err != nil {
			return nil, err
		}
	} else {
		for i, pa := range a.Partitions {
			p, err := newPart(pa, i)
			if err != nil {
				return nil, err
			}
			l.Parts = append(l.Parts, p)
		}
	}
	if err := l.validate(len(a.Disks)); err != nil {
		if a.Preset != "" {
			return nil, fmt.Errorf("preset %s on a %s host: %w", a.Preset, firmwareName(firmware), err)
		}
		return nil, err
	}
	for _, p := range l.Parts {
		if p.Encrypt && strings.TrimSpace(a.LUKSKeyFile) == "" {
			return nil, fmt.Errorf("partition %q: encrypt needs luks_key_file, the file on the controller holding the key", p.Name)
		}
	}
	return l, nil
}

func newPart(pa PartitionArgs, i int) (part, error) {
	if pa.Name == "" {
		return part{}, fmt.Errorf("partitions[%d]: name is required", i)
	}
	if pa.Size == "" || pa.Type == "" {
		return part{}, fmt.Errorf("partition %q: size and type are required", pa.Name)
	}
	sz, err := parseSize(pa.Size)
	if err != nil {
		return part{}, fmt.Errorf("partition %q: %w", pa.Name, err)
	}
	return part{
		Name: pa.Name, Size: sz, Type: pa.Type, Label: pa.Label, Mount: pa.Mount,
		Options: pa.MountOptions, EveryDisk: pa.EveryDisk, OutsideRoot: pa.OutsideRoot, Encrypt: pa.Encrypt,
	}, nil
}

// override applies a task's partitions to a preset's partitions of the same
// name: the keys written replace the preset's.
func override(name string, parts []part, over []PartitionArgs) ([]part, error) {
	known := map[string]bool{}
	for _, fw := range []string{"bios", "uefi"} {
		for _, label := range []string{"gpt", "msdos"} {
			all, _ := preset(name, label, fw)
			for _, p := range all {
				known[p.Name] = true
			}
		}
	}
	for i, o := range over {
		if o.Name == "" {
			return nil, fmt.Errorf("partitions[%d]: name is required", i)
		}
		if !known[o.Name] {
			var names []string
			for n := range known {
				names = append(names, n)
			}
			slices.Sort(names)
			return nil, fmt.Errorf("partition %q: preset %s has no such partition (it has %s)", o.Name, name, strings.Join(names, ", "))
		}
		j := slices.IndexFunc(parts, func(p part) bool { return p.Name == o.Name })
		if j < 0 {
			continue // the partition of another firmware
		}
		p := &parts[j]
		if o.Size != "" {
			sz, err := parseSize(o.Size)
			if err != nil {
				return nil, fmt.Errorf("partition %q: %w", o.Name, err)
			}
			p.Size = sz
		}
		if o.Type != "" {
			p.Type = o.Type
		}
		if o.Label != "" {
			p.Label = o.Label
		}
		if o.Mount != "" {
			p.Mount = o.Mount
		}
		if len(o.MountOptions) > 0 {
			p.Options = o.MountOptions
		}
		p.EveryDisk = p.EveryDisk || o.EveryDisk
		p.OutsideRoot = p.OutsideRoot || o.OutsideRoot
		p.Encrypt = p.Encrypt || o.Encrypt
	}
	return parts, nil
}

func firmwareName(fw string) string {
	if fw == "uefi" {
		return "UEFI"
	}
	return "BIOS"
}
