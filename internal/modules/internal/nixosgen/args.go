package nixosgen

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
)

// Args are the arguments of `nixos_config`. Every value that differs per
// server is meant to come from the inventory through a template; empty
// values fall back to what the host's facts say.
type Args struct {
	Root         string            `yaml:"root" default:"/mnt" doc:"where the new system is mounted; with the task's chroot: it is a path inside the chroot"`
	Hostname     string            `yaml:"hostname" doc:"networking.hostName; a domain name is split into hostName and networking.domain; default: the inventory name (an IP address becomes ip-203-0-113-10)"`
	HostID       string            `yaml:"host_id" doc:"networking.hostId, 8 hex digits; default: the first 8 hex digits of the sha256 of the inventory name, the same on every run"`
	NICNaming    string            `yaml:"nic_naming" default:"mac" doc:"how the installed system names its uplink: mac (a .link unit names the NIC with this MAC nic_name, whatever the kernel calls it), eth0 (usePredictableInterfaceNames = false and the kernel's ethN name) or predictable (the name udev predicted on the running system, which the rescue kernel may get wrong)"`
	NICName      string            `yaml:"nic_name" default:"uplink0" doc:"with nic_naming: mac, the name the uplink gets"`
	Interface    string            `yaml:"interface" doc:"the uplink as the running system names it, whose facts give the defaults; default: the interface of the default route"`
	MAC          string            `yaml:"mac" doc:"the uplink's MAC address; default: from facts; a value that disagrees with them is refused"`
	IPv4         string            `yaml:"ipv4" doc:"address/prefix (203.0.113.10/24); default: the interface's address in facts; a value that disagrees with them is refused"`
	IPv4Gateway  string            `yaml:"ipv4_gateway" doc:"default: the host's IPv4 default gateway; a gateway outside the prefix gets an on-link route"`
	IPv6         string            `yaml:"ipv6" doc:"address/prefix (2001:db8:1:10::1/64, a Kimsufi /128), or none; default: the interface's global IPv6 address in facts, if any"`
	IPv6Gateway  string            `yaml:"ipv6_gateway" doc:"required with ipv6 unless facts have one; OVH's lies outside the /64 (2001:db8:1:ff:ff:ff:ff:ff for 2001:db8:1:10::/64) and gets an on-link route"`
	Nameservers  modkit.StringList `yaml:"nameservers" doc:"default: the host's resolvers, else OVH's (213.186.33.99, and 2001:41d0:3:163::1 with IPv6)"`
	SSHKeys      modkit.StringList `yaml:"ssh_keys" required:"" doc:"root's authorized OpenSSH public keys; without one the server could not be reached, so none is refused"`
	Firmware     string            `yaml:"firmware" default:"auto" doc:"bios, uefi or auto (the running system's boot mode from facts)"`
	Disks        modkit.StringList `yaml:"disks" doc:"BIOS: the disks GRUB is installed on, every one the BIOS may boot; default: the disks of what is mounted under root, else every disk"`
	StableNames  bool              `yaml:"stable_disk_names" default:"true" doc:"write GRUB's disks as their /dev/disk/by-id names, which do not change between rescue and NixOS"`
	EFIMounts    modkit.StringList `yaml:"efi_mounts" doc:"UEFI: mount points of the EFI system partitions inside the new system; several make mirrored boots; default: the vfat file systems mounted at root/boot*, else /boot"`
	ZFS          Auto              `yaml:"zfs" default:"auto" doc:"ZFS support (boot.supportedFilesystems): true, false or auto (whether a ZFS dataset is mounted under root); false is refused when one is"`
	StateVersion string            `yaml:"state_version" default:"26.05" doc:"system.stateVersion: the NixOS release first installed (the stock playbooks pass nixos_release)"`
	Imports      modkit.StringList `yaml:"imports" doc:"more files configuration.nix imports: ./name.nix beside it, absolute paths or <nixpkgs/...>"`
	Extra        string            `yaml:"extra" doc:"Nix text added inside configuration.nix's top-level attribute set; it must not set again what the module writes (use imports and lib.mkForce for that)"`
	Regenerate   bool              `yaml:"regenerate" doc:"run nixos-generate-config even when hardware-configuration.nix exists and matches the mounts"`
	RequireMount bool              `yaml:"require_mount" default:"true" doc:"refuse to write unless a file system is mounted at root, so the configuration is never generated for an empty directory"`
	LUKS         []LUKSDevice      `yaml:"luks" doc:"LUKS volumes the initrd opens with a key file in the installed system (the partition task's luks output: {name, device, key_file}); each becomes boot.initrd.luks.devices.NAME with the key copied into the initrd by boot.initrd.secrets"`
	LoginKey     string            `yaml:"-" var:"rescue_ssh_key" doc:"the key nixbook logs in with: a configuration whose ssh_keys lack it is noted"`
}

// LUKSDevice is a LUKS volume the installed system's initrd opens.
type LUKSDevice struct {
	Name    string `yaml:"name"`     // the mapper name, /dev/mapper/NAME
	Device  string `yaml:"device"`   // the partition holding the volume
	KeyFile string `yaml:"key_file"` // the key's path in the installed system
	Mapper  string `yaml:"mapper"`   // /dev/mapper/NAME, as the partition task says it
}

// Auto is a boolean that may also be left to detection: auto, or an empty
// value from a template, means "decide from the host".
type Auto struct {
	Set, Value bool
}

// TypeName names the type in `nixbook doc`.
func (Auto) TypeName() string { return "bool or auto" }

// UnmarshalYAML accepts true, false, auto and an empty value.
func (a *Auto) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want true, false or auto", n.Line)
	}
	s := strings.ToLower(strings.TrimSpace(n.Value))
	if s == "" || s == "auto" || n.Tag == "!!null" {
		*a = Auto{}
		return nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		switch s {
		case "yes", "on":
			b = true
		case "no", "off":
			b = false
		default:
			return fmt.Errorf("line %d: want true, false or auto, got %q", n.Line, n.Value)
		}
	}
	*a = Auto{Set: true, Value: b}
	return nil
}

func (a Auto) String() string {
	if !a.Set {
		return "auto"
	}
	return strconv.FormatBool(a.Value)
}
