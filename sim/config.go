package sim

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/sim/internal/devtree"
	"github.com/nixbook/nixbook/sim/internal/hostnet"
)

// Defaults of a host.
const (
	DefaultDiskSize   = 8 << 30
	DefaultRAMDiskMiB = 1024
	DefaultBootDelay  = 2 * time.Second
	DefaultNIC        = "eth0"
)

// DiskSpec is one disk of a host.
type DiskSpec struct {
	Kind string // SATA or NVMe
	Size int64  // bytes
}

// HostSpec is a host as the fleet builds it.
type HostSpec struct {
	Name  string
	Index int // 1-based; the host's address is .Index in the /24
	// Kind is "" for a host made of namespaces, KindVM for a QEMU machine.
	Kind string
	// NIC is the name of the host's link in rescue and in the installer.
	NIC string
	// Predicted is the predictable name udev gives the NIC, which a NixOS
	// with usePredictableInterfaceNames (the default) uses; empty when NIC is
	// already that name.
	Predicted  string
	MAC        string
	Disks      []DiskSpec
	RAMDiskMiB int
	MemoryMiB  int // the RAM /proc/meminfo shows; 0: the machine's
	BootDelay  time.Duration
	Mode       Mode   // the first boot
	Data       string // what the disks already hold: "" or "old-os"
	Faults     []string
	// OVHState is the server's state in the OVH API: "" (ok), error,
	// hacked or hackedBlocked.
	OVHState string
	// ReorderDisks swaps the kernel's names of the disks (sda and sdb) on
	// every other boot, as a server's controller may: between the rescue and
	// the installer, and between the installer and the installed system.
	ReorderDisks bool
	// KexecNetwork is how the installer's network comes up after a kexec:
	// none as the rescue's, or with the Kexec* faults listed.
	KexecNetwork []string
	// RescueNetwork is how the rescue gets its IPv4 address: RescueStatic
	// ("" too) or RescueDHCP.
	RescueNetwork string
	// NICDriver is the NIC's driver, as its device link shows it.
	NICDriver string
	// RescuePredicted is the predictable name udev's net_id gives the NIC
	// in the rescue, when it differs from Predicted (the installed
	// system's): another systemd and its naming scheme.
	RescuePredicted string
	// Firmware is how the server boots: FirmwareBIOS (default) or
	// FirmwareUEFI, which shows /sys/firmware/efi, keeps NVRAM boot entries
	// and boots its disk through the loader efiBootloaderPath names on its
	// EFI system partitions.
	Firmware string
	// LoseDisk names a disk (as made: sdb, nvme1n1) that fails after the
	// install: gone from the first disk boot after the installer ran, for
	// good.
	LoseDisk string
	// DiskController is the kernel module of the SATA disks' controller:
	// ahci (""), or a RAID controller's in JBOD mode (megaraid_sas,
	// mpt3sas), which NixOS's initrd lacks unless told.
	DiskController string
}

// DefaultNICDriver is the driver of a host's NIC: Intel's, as on most
// Kimsufi and So you Start servers.
const DefaultNICDriver = "e1000e"

// driver is the NIC's driver.
func (s HostSpec) driver() string {
	if s.NICDriver != "" {
		return s.NICDriver
	}
	return DefaultNICDriver
}

// How the installer's network may come up after a kexec (failure mode 2 of
// the field: nixos-images #242, nixos-anywhere #112 and #415).
const (
	// KexecNewDHCPAddress: DHCP hands the installer another address of the
	// /24 (see hostnet.KexecNewDHCPAddress).
	KexecNewDHCPAddress = hostnet.KexecNewDHCPAddress
	// KexecNoDefaultRoute: the installer has its address but no IPv4
	// default route (see hostnet.KexecNoDefaultRoute).
	KexecNoDefaultRoute = hostnet.KexecNoDefaultRoute
	// KexecNoIPv6: the installer comes up without IPv6.
	KexecNoIPv6 = hostnet.KexecNoIPv6
)

// Firmwares of a host.
const (
	FirmwareBIOS = "bios"
	FirmwareUEFI = "uefi"
)

// UEFI says whether the host boots in UEFI mode.
func (s HostSpec) UEFI() bool { return s.Firmware == FirmwareUEFI }

// predictedName is the NIC's predictable name, if it has one.
func (s HostSpec) predictedName() string {
	if s.Predicted != "" {
		return s.Predicted
	}
	if strings.HasPrefix(s.NIC, "en") {
		return s.NIC
	}
	return ""
}

// Overrides change hosts from their defaults; read from YAML:
//
//	all:                  # every host
//	  disk_size: 16GiB
//	hosts:
//	  ks1:
//	    kind: vm              # a QEMU machine (see KindVM)
//	  ks2:
//	    disks: [{kind: nvme, size: 16GiB}, {kind: nvme, size: 16GiB}]
//	    nic: enp3s0
//	    mac: "00:25:90:aa:bb:cc"
//	    ramdisk: 2GiB
//	    boot_delay: 5s
//	    mode: disk
//	    data: old-os
//	    faults: [never-returns]
//	    ovh_state: hacked
//	    reorder_disks: true
//	    kexec_network: new-dhcp-address
//	    rescue_network: dhcp
//	    firmware: uefi
//	    lose_disk: sdb
//	    disk_controller: megaraid_sas
//	api:                  # the OVH API emulator (see APIOverride)
//	  calm: true
//	payload_padding: 900MiB  # the kexec tarball and the ISO weigh this much more
type Overrides struct {
	All   HostOverride            `yaml:"all"`
	Hosts map[string]HostOverride `yaml:"hosts"`
	API   APIOverride             `yaml:"api"`
	// PayloadPadding pads the kexec tarball and the ISO the fleet serves
	// with zeros to a realistic size (900MiB; the real ones are about
	// 1 GiB): see payload.Artifact.Padded.
	PayloadPadding string `yaml:"payload_padding"`
}

// padding is the payload padding in bytes.
func (o *Overrides) padding() (int64, error) {
	if o == nil || o.PayloadPadding == "" {
		return 0, nil
	}
	n, err := ParseSize(o.PayloadPadding)
	if err != nil {
		return 0, fmt.Errorf("payload_padding: %w", err)
	}
	return n, nil
}

// HostOverride is what can differ per host. Unset fields keep the default.
type HostOverride struct {
	Kind      string         `yaml:"kind"`
	Disks     []DiskOverride `yaml:"disks"`
	DiskCount int            `yaml:"disk_count"`
	DiskSize  string         `yaml:"disk_size"`
	DiskKind  string         `yaml:"disk_kind"`
	NIC       string         `yaml:"nic"`
	Predicted string         `yaml:"predicted_nic"`
	MAC       string         `yaml:"mac"`
	RAMDisk   string         `yaml:"ramdisk"`
	RAM       string         `yaml:"ram"`
	BootDelay string         `yaml:"boot_delay"`
	Mode      string         `yaml:"mode"`
	Data      string         `yaml:"data"`
	Faults    []string       `yaml:"faults"`
	OVHState  string         `yaml:"ovh_state"`
	Reorder   *bool          `yaml:"reorder_disks"`
	// KexecNetwork: new-dhcp-address, no-default-route, no-ipv6, or
	// several separated by commas; as-rescue for none.
	KexecNetwork string `yaml:"kexec_network"`
	// RescueNetwork: static (the default) or dhcp.
	RescueNetwork string `yaml:"rescue_network"`
	// NICDriver: the NIC's driver (default e1000e).
	NICDriver string `yaml:"nic_driver"`
	// RescuePredicted: what the rescue's udev predicts for the NIC.
	RescuePredicted string `yaml:"rescue_predicted_nic"`
	Firmware        string `yaml:"firmware"`
	LoseDisk        string `yaml:"lose_disk"`
	// Controller is the SATA disks' controller: ahci, megaraid_sas, mpt3sas.
	Controller string `yaml:"disk_controller"`
}

// DiskOverride is one disk in an override.
type DiskOverride struct {
	Kind string `yaml:"kind"`
	Size string `yaml:"size"`
}

// LoadOverrides reads an overrides file.
func LoadOverrides(path string) (*Overrides, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read host overrides: %w", err)
	}
	var o Overrides
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&o); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := o.API.check(nil); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := o.padding(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &o, nil
}

var (
	ifaceName = regexp.MustCompile(`^[a-z][a-z0-9]{0,14}$`)
	macAddr   = regexp.MustCompile(`^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$`)
	// moduleName is a kernel module's name, as a driver is.
	moduleName = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
)

// apply changes spec by o.
func (o HostOverride) apply(spec *HostSpec) error {
	switch o.Kind {
	case "":
	case KindVM:
		spec.Kind = o.Kind
	default:
		return fmt.Errorf("kind %q: want vm (or nothing, for a host made of namespaces)", o.Kind)
	}
	for _, name := range []struct {
		key, value, want string
		pattern          *regexp.Regexp
		dst              *string
	}{
		{"nic", o.NIC, "an interface name", ifaceName, &spec.NIC},
		{"predicted_nic", o.Predicted, "an interface name", ifaceName, &spec.Predicted},
		{"rescue_predicted_nic", o.RescuePredicted, "an interface name", ifaceName, &spec.RescuePredicted},
		{"nic_driver", o.NICDriver, "a kernel module name", moduleName, &spec.NICDriver},
	} {
		if name.value == "" {
			continue
		}
		if !name.pattern.MatchString(name.value) {
			return fmt.Errorf("%s %q: not %s", name.key, name.value, name.want)
		}
		*name.dst = name.value
	}
	if o.MAC != "" {
		if !macAddr.MatchString(o.MAC) {
			return fmt.Errorf("mac %q: not a MAC address", o.MAC)
		}
		spec.MAC = strings.ToLower(o.MAC)
	}
	if o.RAMDisk != "" {
		n, err := ParseSize(o.RAMDisk)
		if err != nil {
			return fmt.Errorf("ramdisk: %w", err)
		}
		spec.RAMDiskMiB = int(n >> 20)
	}
	if o.RAM != "" {
		n, err := ParseSize(o.RAM)
		if err != nil {
			return fmt.Errorf("ram: %w", err)
		}
		spec.MemoryMiB = int(n >> 20)
	}
	if o.BootDelay != "" {
		d, err := time.ParseDuration(o.BootDelay)
		if err != nil {
			return fmt.Errorf("boot_delay: %w", err)
		}
		spec.BootDelay = d
	}
	if o.Mode != "" {
		m, err := ParseMode(o.Mode)
		if err != nil {
			return err
		}
		spec.Mode = m
	}
	switch o.Data {
	case "":
	case "old-os", "none":
		spec.Data = o.Data
	default:
		return fmt.Errorf("data %q: want old-os or none", o.Data)
	}
	if o.Reorder != nil {
		spec.ReorderDisks = *o.Reorder
	}
	switch o.RescueNetwork {
	case "":
	case RescueStatic, RescueDHCP:
		spec.RescueNetwork = o.RescueNetwork
	default:
		return fmt.Errorf("rescue_network %q: want %s or %s", o.RescueNetwork, RescueStatic, RescueDHCP)
	}
	if o.KexecNetwork != "" {
		spec.KexecNetwork = nil
		for _, v := range strings.Split(o.KexecNetwork, ",") {
			switch v = strings.TrimSpace(v); v {
			case KexecNewDHCPAddress, KexecNoDefaultRoute, KexecNoIPv6:
				spec.KexecNetwork = append(spec.KexecNetwork, v)
			case "as-rescue":
			default:
				return fmt.Errorf("kexec_network %q: want %s, %s, %s (one or more, separated by commas) or as-rescue", v, KexecNewDHCPAddress, KexecNoDefaultRoute, KexecNoIPv6)
			}
		}
	}
	switch o.Firmware {
	case "":
	case FirmwareBIOS, FirmwareUEFI:
		spec.Firmware = o.Firmware
	default:
		return fmt.Errorf("firmware %q: want bios or uefi", o.Firmware)
	}
	switch o.OVHState {
	case "":
	case "ok", "error", "hacked", "hackedBlocked":
		spec.OVHState = o.OVHState
	default:
		return fmt.Errorf("ovh_state %q: want ok, error, hacked or hackedBlocked", o.OVHState)
	}
	for _, f := range o.Faults {
		if f != FaultNeverReturns && f != FaultKexecHangs {
			return fmt.Errorf("fault %q: want %s or %s", f, FaultNeverReturns, FaultKexecHangs)
		}
	}
	if o.Faults != nil {
		spec.Faults = o.Faults
	}
	if o.DiskCount != 0 || o.DiskSize != "" || o.DiskKind != "" {
		count, size, kind := len(spec.Disks), int64(DefaultDiskSize), SATA
		if count > 0 {
			size, kind = spec.Disks[0].Size, spec.Disks[0].Kind
		}
		if o.DiskCount != 0 {
			count = o.DiskCount
		}
		if o.DiskSize != "" {
			n, err := ParseSize(o.DiskSize)
			if err != nil {
				return fmt.Errorf("disk_size: %w", err)
			}
			size = n
		}
		if o.DiskKind != "" {
			kind = o.DiskKind
		}
		spec.Disks = nil
		for range count {
			spec.Disks = append(spec.Disks, DiskSpec{Kind: kind, Size: size})
		}
	}
	if o.Disks != nil {
		spec.Disks = nil
		for _, d := range o.Disks {
			size := int64(DefaultDiskSize)
			if d.Size != "" {
				n, err := ParseSize(d.Size)
				if err != nil {
					return fmt.Errorf("disk size: %w", err)
				}
				size = n
			}
			kind := d.Kind
			if kind == "" {
				kind = SATA
			}
			spec.Disks = append(spec.Disks, DiskSpec{Kind: kind, Size: size})
		}
	}
	for _, d := range spec.Disks {
		if d.Kind != SATA && d.Kind != NVMe {
			return fmt.Errorf("disk kind %q: want sata or nvme", d.Kind)
		}
		if d.Size < 16<<20 {
			return fmt.Errorf("disk size %d: want at least 16MiB", d.Size)
		}
	}
	if len(spec.Disks) == 0 {
		return fmt.Errorf("a host needs at least one disk")
	}
	if o.LoseDisk != "" {
		spec.LoseDisk = o.LoseDisk
	}
	switch o.Controller {
	case "":
	case "ahci", "megaraid_sas", "mpt3sas":
		spec.DiskController = o.Controller
	default:
		return fmt.Errorf("disk_controller %q: want ahci, megaraid_sas or mpt3sas", o.Controller)
	}
	if spec.LoseDisk != "" {
		var names []string
		perKind := map[string]int{}
		for _, d := range spec.Disks {
			kind := d.Kind
			if spec.Kind == KindVM {
				kind = Virtio // see checkVMSpec
			}
			names = append(names, devtree.DiskName(kind, perKind[kind]))
			perKind[kind]++
		}
		if !slices.Contains(names, spec.LoseDisk) {
			return fmt.Errorf("lose_disk %q: the host's disks are %s", spec.LoseDisk, strings.Join(names, ", "))
		}
	}
	return nil
}

// ParseSize reads sizes like 8GiB, 8G, 512MiB, 500M, 1T or a byte count.
// Units are binary, as disk tools print them.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional unit (MiB, GiB)", s)
	}
	return int64(n * float64(mult)), nil
}

// hostSpecs builds the specs of n hosts named ks1..ksN.
func hostSpecs(n int, p hostnet.Plan, bootDelay time.Duration, o *Overrides) ([]HostSpec, error) {
	if n < 1 || n > MaxHosts {
		return nil, fmt.Errorf("host count %d: want 1 to %d", n, MaxHosts)
	}
	if o == nil {
		o = &Overrides{}
	}
	known := map[string]bool{}
	specs := make([]HostSpec, 0, n)
	for i := 1; i <= n; i++ {
		s := HostSpec{
			Name:       fmt.Sprintf("ks%d", i),
			Index:      i,
			NIC:        DefaultNIC,
			MAC:        p.HostMAC(i),
			Disks:      []DiskSpec{{Kind: SATA, Size: DefaultDiskSize}},
			RAMDiskMiB: DefaultRAMDiskMiB,
			BootDelay:  bootDelay,
			Mode:       ModeRescue,
			Firmware:   FirmwareBIOS,
		}
		if err := o.All.apply(&s); err != nil {
			return nil, fmt.Errorf("overrides for all hosts: %w", err)
		}
		if ho, ok := o.Hosts[s.Name]; ok {
			if err := ho.apply(&s); err != nil {
				return nil, fmt.Errorf("overrides for %s: %w", s.Name, err)
			}
		}
		if slices.Contains(s.KexecNetwork, KexecNewDHCPAddress) && hostnet.NewLeaseIndex(i) <= n {
			return nil, fmt.Errorf("overrides for %s: kexec_network %s needs a free address for the new lease (.%d), which host ks%d has: use a fleet of at most %d hosts", s.Name, KexecNewDHCPAddress, hostnet.NewLeaseIndex(i), hostnet.NewLeaseIndex(i), hostnet.NewLeaseIndex(i)-1)
		}
		if s.Kind == KindVM {
			if err := checkVMSpec(&s); err != nil {
				return nil, fmt.Errorf("overrides for %s: %w", s.Name, err)
			}
		}
		known[s.Name] = true
		specs = append(specs, s)
	}
	for name := range o.Hosts {
		if !known[name] {
			return nil, fmt.Errorf("overrides name host %q, but the fleet has ks1 to ks%d", name, n)
		}
	}
	return specs, nil
}
