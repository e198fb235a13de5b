// Package facts describes what nixbook knows about a host, gathered in one
// round trip at play start, and how it is gathered.
package facts

import (
	"path"
	"strings"
)

// Facts is a host's gathered state. Templates see it as `facts.…` with the
// JSON names below.
type Facts struct {
	Hostname string    `json:"hostname"`
	OS       OSRelease `json:"os"`
	Kernel   string    `json:"kernel"`
	Arch     string    `json:"arch"`
	BootID   string    `json:"boot_id"`
	Firmware string    `json:"firmware"` // "uefi" or "bios"
	MemoryMB int64     `json:"memory_mb"`
	CPUs     int       `json:"cpus"`
	// Rescue is true on an OVH rescue system (rescue-customer / rescue64 ...);
	// IsRescue holds the rule.
	Rescue     bool        `json:"rescue"`
	Interfaces []Interface `json:"interfaces"`
	Gateway4   string      `json:"gateway4"`
	Gateway6   string      `json:"gateway6"`
	// Gateway4Interface and Gateway6Interface name the interface that carries
	// each default route.
	Gateway4Interface string   `json:"gateway4_interface"`
	Gateway6Interface string   `json:"gateway6_interface"`
	Nameservers       []string `json:"nameservers"`
	Disks             []Disk   `json:"disks"`
	Mounts            []Mount  `json:"mounts"`
	// DisksAtStart maps each disk's kernel path, as the run first found it
	// on the host, to its preferred /dev/disk/by-id link. The runner keeps
	// it across the run: a later system (after a kexec or a reboot) may give
	// the same names to other disks.
	DisksAtStart map[string]string `json:"-"`
}

// StableDisks maps each disk's kernel path to its preferred by-id link
// (disks without one are left out).
func (f *Facts) StableDisks() map[string]string {
	out := map[string]string{}
	for _, d := range f.Disks {
		if id := PreferredByID(d.ByID); id != "" {
			out[d.Path] = id
		}
	}
	return out
}

// OSRelease holds the fields of /etc/os-release nixbook uses.
type OSRelease struct {
	ID         string `json:"id"`
	VersionID  string `json:"version_id"`
	VariantID  string `json:"variant_id"`
	PrettyName string `json:"pretty_name"`
}

// Interface is one network interface (loopback excluded).
type Interface struct {
	Name          string   `json:"name"`
	MAC           string   `json:"mac"`
	Driver        string   `json:"driver"`
	PredictedName string   `json:"predicted_name"` // from `udevadm test-builtin net_id`, if udev exists
	NetNames      NetNames `json:"net_names"`      // every name net_id offers
	IPv4          []string `json:"ipv4"`           // CIDR, e.g. 203.0.113.10/24
	IPv6          []string `json:"ipv6"`           // CIDR, global scope only
	// IPv4Dynamic are those of IPv4 that are DHCP leases: ip(8) marks them
	// dynamic, with a lifetime. Empty on a host without ip(8), whose /proc
	// does not tell.
	IPv4Dynamic []string `json:"ipv4_dynamic"`
	Up          bool     `json:"up"`
}

// NetNames are the names systemd's net_id builtin derives for a NIC. systemd
// picks the first of onboard, slot and path that exists; the MAC-based name is
// only used when a .link file asks for it.
type NetNames struct {
	Onboard string `json:"onboard"`
	Slot    string `json:"slot"`
	Path    string `json:"path"`
	MAC     string `json:"mac"`
}

// Disk is one whole block device.
type Disk struct {
	Path       string      `json:"path"` // /dev/sda, /dev/nvme0n1
	SizeBytes  int64       `json:"size_bytes"`
	Model      string      `json:"model"`
	Rotational bool        `json:"rotational"`
	Transport  string      `json:"transport"` // sata, nvme, virtio, ...
	ByID       []string    `json:"by_id"`     // /dev/disk/by-id/... links to it
	PartTable  string      `json:"part_table"`
	FSType     string      `json:"fstype"` // a filesystem or RAID signature on the whole disk
	Partitions []Partition `json:"partitions"`

	// Driver is the kernel module of the disk's controller (ahci, nvme,
	// megaraid_sas): the PCI driver above the disk in sysfs, as sysfs
	// spells it (virtio-pci for virtio_pci). The initrd needs it to find
	// the root.
	Driver string `json:"driver,omitempty"`
}

// Partition is one partition of a disk.
type Partition struct {
	Path       string `json:"path"`
	Number     int    `json:"number"`
	SizeBytes  int64  `json:"size_bytes"`
	FSType     string `json:"fstype"`
	Label      string `json:"label"`
	PartLabel  string `json:"partlabel"`
	UUID       string `json:"uuid"`
	Mountpoint string `json:"mountpoint"`
}

// Mount is one line of /proc/mounts. Facts keep those that name a device (a
// path such as /dev/sda1) or a ZFS dataset.
type Mount struct {
	Device     string `json:"device"`
	Mountpoint string `json:"mountpoint"`
	FSType     string `json:"fstype"`
}

// PreferredByID picks the most stable by-id link of a disk: names built
// from the bus, model and serial (ata-, nvme-, scsi-, virtio-) before WWN and
// EUI names, which some controllers report differently, and the shortest
// of equals (nvme's "_1" namespace variants come second). "" when there is
// none.
func PreferredByID(links []string) string {
	best, bestRank := "", 0
	for _, l := range links {
		r := byIDRank(path.Base(l))
		if best == "" || r < bestRank || r == bestRank && (len(l) < len(best) || len(l) == len(best) && l < best) {
			best, bestRank = l, r
		}
	}
	return best
}

func byIDRank(name string) int {
	switch {
	case strings.HasPrefix(name, "nvme-eui.") || strings.HasPrefix(name, "nvme-uuid.") || strings.HasPrefix(name, "nvme-nvme."):
		return 3
	case strings.HasPrefix(name, "wwn-"):
		return 2
	case strings.HasPrefix(name, "ata-"), strings.HasPrefix(name, "nvme-"), strings.HasPrefix(name, "scsi-"), strings.HasPrefix(name, "virtio-"):
		return 0
	}
	return 1
}
