// Package zfs is the `zfs` module: a ZFS pool over partitions or whole
// disks, its datasets, and the mounts of its datasets under the install
// root, guarded the way disko guards them. Every step first looks at what
// exists: an imported pool is kept, an exported one is imported rather than
// created again, existing datasets are left alone (their properties set if
// they differ), and mounted datasets stay mounted, so a run that stopped
// half-way can simply be run again. Devices that hold other data are refused
// unless the task says `wipe: true`.
package zfs

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
)

// Args are the arguments of `zfs`.
type Args struct {
	Pool           string     `yaml:"pool" required:"" doc:"the pool's name, e.g. rpool"`
	Vdev           string     `yaml:"vdev" default:"single" doc:"how devices form the pool: single (each device on its own, striped when there are several), mirror, raidz (raidz1), raidz2 or raidz3"`
	Devices        []string   `yaml:"devices" doc:"the pool's partitions or whole disks: /dev/sda2, /dev/nvme0n1p3, /dev/disk/by-id/... (by-id names survive disk reordering)"`
	Vdevs          []Vdev     `yaml:"vdevs" doc:"several top-level vdevs (two mirrors, say), each with vdev and devices; instead of vdev and devices"`
	Ashift         int        `yaml:"ashift" default:"12" doc:"log2 of the sector size ZFS assumes (12: 4 KiB); 0 lets ZFS pick; fixed once the pool exists"`
	Properties     Properties `yaml:"properties" doc:"pool properties (zpool create -o), e.g. autotrim: on"`
	RootProperties Properties `yaml:"root_properties" doc:"properties of the pool's root dataset (zpool create -O), over the defaults mountpoint=none compression=lz4 acltype=posixacl xattr=sa atime=off normalization=formD dnodesize=auto"`
	Root           string     `yaml:"root" default:"/mnt" doc:"the alternate root the pool is created and imported under (-R); datasets are mounted below it; empty for none"`
	Datasets       []Dataset  `yaml:"datasets" doc:"datasets to create, parents before children; names are relative to the pool"`
	Wipe           bool       `yaml:"wipe" doc:"erase what the devices hold (filesystem signatures, partition tables, labels of other pools) before creating the pool; without it such devices are refused"`
	State          string     `yaml:"state" default:"present" doc:"present: the pool imported, its datasets created and mounted; exported: the pool exported, as before rebooting into the installed system"`
}

// Vdev is one top-level vdev.
type Vdev struct {
	Vdev    string   `yaml:"vdev" doc:"single, mirror, raidz, raidz2 or raidz3"`
	Devices []string `yaml:"devices" doc:"its partitions or whole disks"`
}

// Dataset is one dataset of the pool.
type Dataset struct {
	Name       string     `yaml:"name" doc:"the dataset's name relative to the pool: root/nixos, home"`
	Mountpoint string     `yaml:"mountpoint" doc:"legacy (the default: mounted by the system's fstab, as NixOS does), none, or a path ZFS mounts it at"`
	Mount      string     `yaml:"mount" doc:"for a legacy dataset, where the installed system mounts it (/, /home): it is mounted at root plus that path"`
	Properties Properties `yaml:"properties" doc:"dataset properties (zfs create -o), e.g. refreservation: 1G"`
}

// Properties are ZFS properties. Values may be written as YAML booleans,
// which become on and off.
type Properties map[string]string

// TypeName names the type in `nixbook doc`.
func (Properties) TypeName() string { return "map of string" }

// UnmarshalYAML accepts any scalar value.
func (p *Properties) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		*p = nil
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of property: value", n.Line)
	}
	out := make(Properties, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: property %s: want a scalar value", v.Line, k.Value)
		}
		val := v.Value
		if v.Tag == "!!bool" {
			val = map[bool]string{true: "on", false: "off"}[strings.EqualFold(val, "true")]
		}
		out[k.Value] = val
	}
	*p = out
	return nil
}

// RootDefaults are the root dataset properties every pool gets unless the
// task overrides them: nothing mounted by ZFS itself, and what NixOS on ZFS
// recipes use.
var rootDefaults = Properties{
	"mountpoint":    "none",
	"compression":   "lz4",
	"acltype":       "posixacl",
	"xattr":         "sa",
	"atime":         "off",
	"normalization": "formD",
	"dnodesize":     "auto",
}

// Spec is the `zfs` module.
var Spec = modules.Spec{
	Name:    "zfs",
	Summary: "Create or import a ZFS pool, create its datasets and mount them under the install root; export it.",
	Args:    Args{},
	Example: `- name: Pool and datasets
  zfs:
    pool: rpool
    vdev: mirror
    devices: [/dev/disk/by-id/ata-A-part2, /dev/disk/by-id/ata-B-part2]
    datasets:
      - {name: root, mountpoint: none}
      - {name: root/nixos, mount: /}
      - {name: home, mount: /home}
      - {name: reserved, mountpoint: none, properties: {refreservation: 1G}}
  register: zfs

- name: Export the pool before rebooting
  zfs:
    pool: rpool
    state: exported
`,
	New: modkit.New(func(a Args) (modules.Module, error) {
		cfg, err := newConfig(a)
		if err != nil {
			return nil, err
		}
		return &module{cfg: cfg}, nil
	}),
}

type module struct{ cfg *config }

// config is the validated task.
type config struct {
	pool       string
	vdevs      []vdevSpec // top-level vdevs as asked
	ashift     int
	props      Properties // pool properties
	rootProps  Properties // root dataset properties, defaults merged
	root       string     // "" for no altroot
	datasets   []datasetSpec
	wipe       bool
	exported   bool
	hasDevices bool
}

type vdevSpec struct {
	kind    string // "" (a device on its own), mirror, raidz1, raidz2, raidz3
	devices []string
}

type datasetSpec struct {
	name       string // full name, pool included
	mountpoint string // legacy, none or a path
	mount      string // path in the installed system; "" when not mounted
	props      Properties
}

// zfsMounted says ZFS mounts the dataset itself (a path mountpoint).
func (d datasetSpec) zfsMounted() bool { return strings.HasPrefix(d.mountpoint, "/") }

var (
	nameRE     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.:-]*$`)
	componentR = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
	propRE     = regexp.MustCompile(`^[a-z][a-z0-9_:@.-]*$`)
)

func newConfig(a Args) (*config, error) {
	c := &config{pool: a.Pool, ashift: a.Ashift, props: a.Properties, wipe: a.Wipe}
	if !nameRE.MatchString(a.Pool) || reservedPoolName(a.Pool) {
		return nil, fmt.Errorf("pool %q: a pool name starts with a letter, holds only letters, digits and _ . : -, and is not mirror, raidz, draid, spare, log or c0...", a.Pool)
	}
	switch a.State {
	case "present":
	case "exported":
		c.exported = true
	default:
		return nil, fmt.Errorf("state %q: want present or exported", a.State)
	}
	if a.Ashift != 0 && (a.Ashift < 9 || a.Ashift > 16) {
		return nil, fmt.Errorf("ashift %d: want 9 to 16 (12 for 4 KiB sectors), or 0 to let ZFS pick", a.Ashift)
	}
	switch {
	case len(a.Vdevs) > 0 && len(a.Devices) > 0:
		return nil, errors.New("give either devices (with vdev) or vdevs, not both")
	case len(a.Vdevs) > 0:
		for i, v := range a.Vdevs {
			kind := v.Vdev
			if kind == "" {
				kind = "single"
			}
			vs, err := vdevSpecs(kind, v.Devices)
			if err != nil {
				return nil, fmt.Errorf("vdevs[%d]: %w", i, err)
			}
			c.vdevs = append(c.vdevs, vs...)
		}
	case len(a.Devices) > 0:
		vs, err := vdevSpecs(a.Vdev, a.Devices)
		if err != nil {
			return nil, err
		}
		c.vdevs = vs
	case !c.exported:
		return nil, errors.New("devices is required: the partitions or disks of the pool")
	}
	c.hasDevices = len(c.vdevs) > 0
	seen := map[string]bool{}
	for _, v := range c.vdevs {
		for _, d := range v.devices {
			if seen[d] {
				return nil, fmt.Errorf("device %s is listed twice", d)
			}
			seen[d] = true
		}
	}
	for k := range a.Properties {
		if !propRE.MatchString(k) || k == "ashift" || k == "altroot" {
			return nil, fmt.Errorf("pool property %q: not a settable property name (ashift and root have their own arguments)", k)
		}
	}
	c.rootProps = Properties{}
	for k, v := range rootDefaults {
		c.rootProps[k] = v
	}
	for k, v := range a.RootProperties {
		if !propRE.MatchString(k) {
			return nil, fmt.Errorf("root property %q: not a property name", k)
		}
		c.rootProps[k] = v
	}
	if mp := c.rootProps["mountpoint"]; !validMountpoint(mp) {
		return nil, fmt.Errorf("root_properties mountpoint %q: want legacy, none or an absolute path", mp)
	}
	switch root := path.Clean(a.Root); {
	case a.Root == "" || root == "/":
	case !path.IsAbs(a.Root):
		return nil, fmt.Errorf("root %q: want an absolute path such as /mnt", a.Root)
	default:
		c.root = root
	}
	ds, err := datasetSpecs(a.Pool, a.Datasets)
	if err != nil {
		return nil, err
	}
	c.datasets = ds
	return c, nil
}

func reservedPoolName(name string) bool {
	for _, p := range []string{"mirror", "raidz", "draid", "spare", "log"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return len(name) > 1 && name[0] == 'c' && name[1] >= '0' && name[1] <= '9'
}

func vdevSpecs(kind string, devices []string) ([]vdevSpec, error) {
	for _, d := range devices {
		if !strings.HasPrefix(d, "/dev/") || path.Clean(d) != d {
			return nil, fmt.Errorf("device %q: want a device path under /dev, such as /dev/sda2 or /dev/disk/by-id/...", d)
		}
	}
	min := map[string]int{"single": 1, "stripe": 1, "mirror": 2, "raidz": 2, "raidz1": 2, "raidz2": 3, "raidz3": 4}
	n, ok := min[kind]
	if !ok {
		return nil, fmt.Errorf("vdev %q: want single, mirror, raidz, raidz2 or raidz3", kind)
	}
	if len(devices) < n {
		return nil, fmt.Errorf("vdev %s needs at least %d devices, got %d", kind, n, len(devices))
	}
	switch kind {
	case "single", "stripe":
		out := make([]vdevSpec, len(devices))
		for i, d := range devices {
			out[i] = vdevSpec{devices: []string{d}}
		}
		return out, nil
	case "raidz":
		kind = "raidz1"
	}
	return []vdevSpec{{kind: kind, devices: slices.Clone(devices)}}, nil
}

func validMountpoint(mp string) bool {
	return mp == "legacy" || mp == "none" || (path.IsAbs(mp) && path.Clean(mp) == mp)
}

// datasetSpecs validates the datasets and orders parents before children,
// keeping the task's order otherwise.
func datasetSpecs(pool string, in []Dataset) ([]datasetSpec, error) {
	var out []datasetSpec
	names, mounts := map[string]bool{}, map[string]string{}
	for _, d := range in {
		if d.Name == "" || strings.HasPrefix(d.Name, "/") || strings.HasSuffix(d.Name, "/") {
			return nil, fmt.Errorf("dataset %q: want a name relative to the pool, such as root/nixos", d.Name)
		}
		for _, c := range strings.Split(d.Name, "/") {
			if !componentR.MatchString(c) {
				return nil, fmt.Errorf("dataset %q: each part holds only letters, digits and _ . : -", d.Name)
			}
		}
		full := pool + "/" + d.Name
		if names[full] {
			return nil, fmt.Errorf("dataset %s is listed twice", d.Name)
		}
		names[full] = true
		mp := d.Mountpoint
		if mp == "" {
			mp = "legacy"
		}
		if !validMountpoint(mp) {
			return nil, fmt.Errorf("dataset %s: mountpoint %q: want legacy, none or an absolute path", d.Name, mp)
		}
		mount := d.Mount
		switch {
		case mount == "":
		case !path.IsAbs(mount) || path.Clean(mount) != mount:
			return nil, fmt.Errorf("dataset %s: mount %q: want an absolute path such as /home", d.Name, mount)
		case mp == "none":
			return nil, fmt.Errorf("dataset %s: mount %s needs mountpoint legacy, not none", d.Name, mount)
		case strings.HasPrefix(mp, "/") && mount != mp:
			return nil, fmt.Errorf("dataset %s: mount %s differs from its mountpoint %s; give one of them", d.Name, mount, mp)
		}
		if strings.HasPrefix(mp, "/") {
			mount = mp
			if cm := d.Properties["canmount"]; cm == "off" || cm == "noauto" {
				mount = ""
			}
		}
		if mount != "" {
			if other, dup := mounts[mount]; dup {
				return nil, fmt.Errorf("datasets %s and %s are both mounted at %s", other, d.Name, mount)
			}
			mounts[mount] = d.Name
		}
		for k := range d.Properties {
			if !propRE.MatchString(k) || k == "mountpoint" {
				return nil, fmt.Errorf("dataset %s: property %q: not a property name (mountpoint has its own argument)", d.Name, k)
			}
		}
		out = append(out, datasetSpec{name: full, mountpoint: mp, mount: mount, props: d.Properties})
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i].name, "/") < strings.Count(out[j].name, "/")
	})
	return out, nil
}

// mountOrder sorts mounts so that a parent directory is mounted before
// anything below it.
func mountOrder(a, b string) int {
	return slices.Compare(strings.Split(strings.TrimPrefix(a, "/"), "/"), strings.Split(strings.TrimPrefix(b, "/"), "/"))
}

// target is where a path of the installed system is mounted now.
func (c *config) target(p string) string {
	if c.root == "" {
		return p
	}
	return path.Join(c.root, p)
}

// layout renders vdevs the way `zpool create` takes them.
func layout(vs []vdevSpec) string {
	var parts []string
	for _, v := range vs {
		if v.kind == "" {
			parts = append(parts, v.devices...)
			continue
		}
		parts = append(parts, v.kind+" "+strings.Join(v.devices, " "))
	}
	return strings.Join(parts, ", ")
}
