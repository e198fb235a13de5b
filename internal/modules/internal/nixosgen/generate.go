package nixosgen

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
)

// HardwareFile is the hardware configuration configuration.nix imports.
const HardwareFile = "hardware-configuration.nix"

// Layouts nixbook knows the file systems of: the stock install.yml's
// fs_layout values.
const (
	LayoutZFS  = "zfs"
	LayoutExt4 = "ext4"
)

// HostFile is one file of a host's folder in a flake.
type HostFile struct {
	Name    string
	Content []byte
}

// Host is what `nixbook generate` derives for one host.
type Host struct {
	Name   string         // inventory name
	Facts  *facts.Facts   // gathered from the running system
	Vars   map[string]any // the nixos_config arguments, as a task would pass them
	Layout string         // "" (unknown), LayoutZFS or LayoutExt4
}

// InventoryArg is one nixos_config argument and the inventory variables the
// stock playbooks pass it from, the first one set winning.
type InventoryArg struct {
	Arg  string
	Vars []string
}

// InventoryVars are the nixos_config arguments a host's folder is rendered
// from, as the stock playbooks pass them: what `nixbook generate` and the
// install step's evaluation of a flake on the controller render. Each
// field's arg tag names the argument, its var tag the inventory variables
// it comes from, the first one set winning, as modkit reads var tags: a
// module's arguments take them in inline.
type InventoryVars struct {
	SSHKeys      any `yaml:"-" arg:"ssh_keys" var:"ssh_keys,rescue_ssh_key" doc:"the host folder's ssh_keys (a local flake)"`
	IPv4         any `yaml:"-" arg:"ipv4" var:"ipv4" doc:"the host folder's ipv4 (a local flake)"`
	IPv6         any `yaml:"-" arg:"ipv6" var:"ipv6" doc:"the host folder's ipv6 (a local flake); the IPv6 address the installed system must answer at after the reboot (default: the installer's; none: not checked)"`
	IPv6Gateway  any `yaml:"-" arg:"ipv6_gateway" var:"ipv6_gateway" doc:"the host folder's ipv6_gateway (a local flake); the gateway of the installed system's IPv6 default route (default: the installer's)"`
	NICNaming    any `yaml:"-" arg:"nic_naming" var:"nic_naming" doc:"the host folder's nic_naming (a local flake)"`
	Disks        any `yaml:"-" arg:"disks" var:"disks" doc:"the host folder's disks (a local flake)"`
	StateVersion any `yaml:"-" arg:"state_version" var:"state_version,nixos_release" doc:"the host folder's state_version (a local flake)"`
}

// InventoryArgs lists the arguments of InventoryVars and the variables
// each is passed from.
func InventoryArgs() []InventoryArg {
	t := reflect.TypeFor[InventoryVars]()
	out := make([]InventoryArg, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		out = append(out, InventoryArg{Arg: f.Tag.Get("arg"), Vars: strings.Split(f.Tag.Get("var"), ",")})
	}
	return out
}

// Args are the values v holds by argument name, as Host.Vars takes them.
func (v InventoryVars) Args() map[string]any {
	val := reflect.ValueOf(v)
	out := make(map[string]any, val.NumField())
	for i := range val.NumField() {
		out[val.Type().Field(i).Tag.Get("arg")] = val.Field(i).Interface()
	}
	return out
}

// GenerateHost renders the folder a flake imports as hosts/<name>: the
// configuration (default.nix), nixbook's network module and a hardware
// configuration made from facts alone, as no new system is mounted to run
// nixos-generate-config against. Notes are worth showing to the user.
func GenerateHost(ctx context.Context, h Host) (files []HostFile, notes []string, err error) {
	text, err := yaml.Marshal(h.Vars)
	if err != nil {
		return nil, nil, fmt.Errorf("arguments: %w", err)
	}
	var a Args
	if err := modkit.Decode(yamlDecoder(text), &a); err != nil {
		return nil, nil, err
	}
	if err := Validate(&a); err != nil {
		return nil, nil, err
	}
	f := h.Facts
	if f == nil {
		f = &facts.Facts{}
	}
	firmware := a.Firmware
	if firmware == "auto" {
		firmware = f.Firmware
	}
	mounts, err := layoutOf(h.Layout, firmware, len(a.Disks))
	if err != nil {
		return nil, nil, err
	}
	cfg, err := Configure(a, h.Name, f, Layout{mounts: mounts, RootMounted: mounts != nil})
	if err != nil {
		return nil, nil, err
	}
	// The flake imports the folder: its configuration is default.nix.
	files = []HostFile{
		{Name: "default.nix", Content: cfg.file(ConfigurationFile)},
		{Name: HardwareFile, Content: []byte(renderHardware(h.Name, f, mounts))},
		{Name: NetworkFile, Content: cfg.file(NetworkFile)},
	}
	switch err := ParseCheck(ctx, files, "hosts/"+h.Name); {
	case errors.Is(err, ErrNoNix):
		notes = append(notes, "nix-instantiate is not installed on the controller: the files are not parse-checked")
	case err != nil:
		return nil, nil, err
	}
	for _, n := range cfg.Notes {
		if !strings.HasPrefix(n, "nothing is mounted") {
			notes = append(notes, n)
		}
	}
	if mounts == nil {
		notes = append(notes, "no fs_layout in the inventory: hardware-configuration.nix has no fileSystems, add them in the flake (the install step replaces the file with what nixos-generate-config finds)")
	}
	return files, notes, nil
}

type yamlDecoder []byte

func (d yamlDecoder) Decode(v any) error {
	dec := yaml.NewDecoder(strings.NewReader(string(d)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("arguments: %w", err)
	}
	return nil
}

// layoutOf is the file systems the stock install.yml makes with fs_layout:
// the root (a legacy ZFS dataset or an ext4 partition labelled nixos),
// /home on ZFS, and a boot partition per disk labelled boot, boot-2, ... mounted at
// /boot, /boot-2, ... (ext4 with BIOS, the EFI system partitions with
// UEFI). Nil when the layout is unknown.
func layoutOf(layout, firmware string, disks int) ([]mount, error) {
	var ms []mount
	switch layout {
	case "":
		return nil, nil
	case LayoutZFS:
		ms = append(ms, mount{Device: "rpool/root/nixos", Target: "/", FSType: "zfs"}, mount{Device: "rpool/home", Target: "/home", FSType: "zfs"})
	case LayoutExt4:
		ms = append(ms, mount{Device: "/dev/disk/by-label/nixos", Target: "/", FSType: "ext4"})
	default:
		return nil, fmt.Errorf("fs_layout %q: want %s or %s (the stock install.yml's layouts), or leave it unset", layout, LayoutZFS, LayoutExt4)
	}
	bootFS := "ext4"
	if firmware == "uefi" {
		bootFS = "vfat"
	}
	for k := range max(disks, 1) {
		suffix := ""
		if k > 0 {
			suffix = fmt.Sprintf("-%d", k+1)
		}
		ms = append(ms, mount{Device: "/dev/disk/by-label/boot" + suffix, Target: "/boot" + suffix, FSType: bootFS})
	}
	return ms, nil
}

// transportModules are the initrd modules a disk's transport needs.
var transportModules = map[string][]string{
	"sata":   {"ahci", "sd_mod"},
	"ata":    {"ahci", "sd_mod"},
	"nvme":   {"nvme"},
	"virtio": {"virtio_pci", "virtio_blk"},
	"sas":    {"sd_mod"},
	"scsi":   {"sd_mod"},
	"usb":    {"usb_storage", "uas", "sd_mod"},
}

// diskTransport is d's transport, guessed from its kernel name where lsblk
// reports none.
func diskTransport(d facts.Disk) string {
	if d.Transport != "" {
		return d.Transport
	}
	return transportOf(d.Path)
}

// moduleName is the kernel module of a driver as sysfs names it: the
// kernel reads - and _ alike in module names, and writes virtio_pci's
// driver virtio-pci.
func moduleName(driver string) string { return strings.ReplaceAll(driver, "-", "_") }

// transportOf guesses a disk's transport from its kernel name where lsblk
// reports none, as it does for virtio disks.
func transportOf(dev string) string {
	switch {
	case strings.HasPrefix(dev, "/dev/vd"):
		return "virtio"
	case strings.HasPrefix(dev, "/dev/nvme"):
		return "nvme"
	}
	return ""
}

func nixPlatform(arch string) string {
	switch arch {
	case "x86_64", "amd64":
		return "x86_64-linux"
	case "aarch64", "arm64":
		return "aarch64-linux"
	}
	return ""
}

// renderHardware is the hardware configuration nixbook can write from facts
// without the new system mounted: the disk controllers' initrd modules,
// the platform and, when the inventory names the layout, its file systems.
func renderHardware(name string, f *facts.Facts, mounts []mount) string {
	var w writer
	w.comment(fmt.Sprintf("Generated by nixbook generate for %s from the facts of the running system,\n"+
		"which has no new system mounted: nixos-generate-config cannot run, so this\n"+
		"file holds only what nixbook knows. In it: the disk controllers' kernel\n"+
		"modules, the platform, and the file systems when fs_layout names the stock\n"+
		"layout. Not in it: CPU microcode, other kernel modules, swap, file system\n"+
		"UUIDs. The install step replaces it with what nixos-generate-config finds.", oneLine(name)))
	w.line("{ lib, ... }:")
	w.line("")
	w.open("{")
	var mods []string
	var seen []string
	for _, d := range f.Disks {
		d.Transport = diskTransport(d)
		for _, m := range append(slices.Clone(transportModules[d.Transport]), moduleName(d.Driver)) {
			if m != "" && !slices.Contains(mods, m) {
				mods = append(mods, m)
			}
		}
		if d.Transport != "" && !slices.Contains(seen, d.Transport) {
			seen = append(seen, d.Transport)
		}
	}
	if len(mods) > 0 {
		w.comment(fmt.Sprintf("The disks' transports in facts: %s.", strings.Join(seen, ", ")))
		w.line("boot.initrd.availableKernelModules = %s;", nixStrings(mods))
	} else {
		w.comment("Facts show no disk controller; configuration.nix loads OVH's usual ones.")
	}
	if p := nixPlatform(f.Arch); p != "" {
		w.line("nixpkgs.hostPlatform = lib.mkDefault %s;", nixString(p))
	}
	if mounts == nil {
		w.comment("The layout is unknown (no fs_layout): set fileSystems in the flake.")
	} else {
		w.line("")
		w.comment("The stock install.yml's layout (fs_layout).")
		for _, m := range mounts {
			w.open("fileSystems.%s = {", nixString(m.Target))
			w.line("device = %s;", nixString(m.Device))
			w.line("fsType = %s;", nixString(m.FSType))
			// With BIOS, configuration.nix's mirrored boots make every
			// /boot nofail.
			if strings.HasPrefix(m.Target, "/boot-") && m.FSType == "vfat" {
				w.line("options = %s;", nixStrings([]string{"nofail"}))
			}
			w.close("};")
		}
	}
	w.close("}")
	return w.b.String()
}
