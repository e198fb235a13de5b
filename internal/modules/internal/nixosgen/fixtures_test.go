package nixosgen

import (
	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules/internal/nixosgen/nixosgentest"
	"github.com/nixbook/nixbook/sim/nixeval"
)

const (
	adminKey = nixosgentest.AdminKey
	// A comment may hold anything; the rendered string must keep it intact.
	trickyKey = `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl "ops" ${HOME} \backslash`

	sataA = nixosgentest.SATAA
	sataB = nixosgentest.SATAB
	nvmeA = "/dev/disk/by-id/nvme-SAMSUNG_MZVL2512HCJQ-00B00_S675NX0T100001"
	nvmeB = "/dev/disk/by-id/nvme-SAMSUNG_MZVL2512HCJQ-00B00_S675NX0T100002"
)

// withSecondDisk adds an identical SATA disk.
func withSecondDisk(f *facts.Facts) *facts.Facts {
	f.Disks = append(f.Disks, facts.Disk{
		Path:      "/dev/sdb",
		SizeBytes: 2000398934016,
		ByID:      []string{"/dev/disk/by-id/wwn-0x5000cca22de1a2b4", sataB},
		PartTable: "dos",
	})
	return f
}

// withDriver puts the disks behind a controller driven by module.
func withDriver(f *facts.Facts, module string) *facts.Facts {
	for i := range f.Disks {
		f.Disks[i].Driver = module
	}
	return f
}

// withBootOnEach gives every disk the stock layout's partitions: a /boot
// (ext4) and the pool's half.
func withBootOnEach(f *facts.Facts) *facts.Facts {
	for i := range f.Disks {
		d := &f.Disks[i]
		d.PartTable = "gpt"
		d.Partitions = []facts.Partition{
			{Path: d.Path + "1", Number: 1, FSType: "ext4"},
			{Path: d.Path + "2", Number: 2, FSType: "zfs_member"},
		}
	}
	return f
}

// withIPv6 gives the rescue system OVH's IPv6 block and gateway.
func withIPv6(f *facts.Facts) *facts.Facts {
	f.Interfaces[0].IPv6 = []string{"2001:db8:1:10::1/64"}
	f.Gateway6, f.Gateway6Interface = "2001:db8:1:ff:ff:ff:ff:ff", "eth0"
	return f
}

// installerNVMe is a UEFI server booted into the NixOS kexec installer,
// which already uses predictable names.
func installerNVMe(disks int) *facts.Facts {
	f := &facts.Facts{
		Hostname: "nixos",
		OS:       facts.OSRelease{ID: "nixos", VersionID: "22.11", VariantID: "installer"},
		Firmware: "uefi",
		Interfaces: []facts.Interface{{
			Name:          "enp1s0",
			MAC:           "a8:a1:59:00:00:02",
			Driver:        "igb",
			PredictedName: "enp1s0",
			IPv4:          []string{"198.51.100.20/24"},
			IPv6:          []string{"2001:db8:2:20::1/64"},
			Up:            true,
		}},
		Gateway4: "198.51.100.254", Gateway4Interface: "enp1s0",
		Gateway6: "fe80::1", Gateway6Interface: "enp1s0",
	}
	for i, id := range []string{nvmeA, nvmeB}[:disks] {
		f.Disks = append(f.Disks, facts.Disk{
			Path:      []string{"/dev/nvme0n1", "/dev/nvme1n1"}[i],
			SizeBytes: 512110190592,
			Transport: "nvme",
			ByID:      []string{id, []string{"/dev/disk/by-id/nvme-eui.002538b111b2c3d4", "/dev/disk/by-id/nvme-eui.002538b111b2c3d5"}[i]},
			PartTable: "gpt",
		})
	}
	return f
}

// renderCase is one golden configuration: arguments, host, what is
// mounted under /mnt, and the simulated server it must boot on.
type renderCase struct {
	name      string
	args      string
	facts     *facts.Facts
	mounts    string // /proc/self/mounts lines
	hardware  string // hardware-configuration.nix fixture under testdata/hardware
	server    nixeval.Host
	extraFile map[string]string // more files beside configuration.nix, for imports
}

const ext4Mounts = "/dev/sda1 /mnt ext4 rw,relatime 0 0\n"

func renderCases() []renderCase {
	twoDisks := kimsufiServer()
	twoDisks.Disks = []string{"/dev/sda", "/dev/sdb"}
	twoDisks.DiskAliases[sataB] = "/dev/sdb"

	zfsServer := kimsufiServer()
	zfsServer.ZFS = true
	twoDisksZFS := twoDisks
	twoDisksZFS.ZFS = true

	uefi := nixeval.Host{
		Name: "eg1", NIC: "enp1s0", MAC: "a8:a1:59:00:00:02",
		IPv4CIDR: "198.51.100.20/24", IPv4Gateway: "198.51.100.254",
		IPv6CIDR: "2001:db8:2:20::1/64", IPv6Gateway: "fe80::1",
		Disks:       []string{"/dev/nvme0n1", "/dev/nvme1n1"},
		DiskAliases: map[string]string{nvmeA: "/dev/nvme0n1", nvmeB: "/dev/nvme1n1"},
		UEFI:        true,
	}
	uefiZFS := uefi
	uefiZFS.ZFS = true

	kimsufi128 := kimsufiServer()
	kimsufi128.IPv6CIDR = "2001:db8:1:10::1/128"

	hetzner := kimsufiServer()
	hetzner.IPv4CIDR, hetzner.IPv4Gateway = "192.0.2.7/32", "192.0.2.1"
	hetzner.IPv6CIDR, hetzner.IPv6Gateway = "2001:db8:3::2/64", "fe80::1"
	hetznerFacts := rescue()
	hetznerFacts.Interfaces[0].IPv4 = []string{"192.0.2.7/32"}
	hetznerFacts.Gateway4 = "192.0.2.1"

	noV6 := kimsufiServer()
	noV6.IPv6CIDR, noV6.IPv6Gateway = "", ""

	fqdn := kimsufiServer()
	fqdn.Name = "ns1234.ip-203-0-113.eu"

	return []renderCase{
		{
			name: "bios-luks-root",
			args: `
ssh_keys: ["` + adminKey + `"]
luks:
  - {name: nixos, device: /dev/disk/by-id/ata-ST2000DM008-2FR102_ZFL0A1B2-part3, mapper: /dev/mapper/nixos, key_file: /etc/secrets/initrd/nixos.key}
`,
			facts:    withIPv6(rescue()),
			mounts:   ext4Mounts,
			hardware: "ext4.nix",
			server:   kimsufiServer(),
		},
		{
			name: "bios-eth0",
			args: `
nic_naming: eth0
ssh_keys: ["` + adminKey + `"]
`,
			facts:    withIPv6(rescue()),
			mounts:   ext4Mounts,
			hardware: "ext4.nix",
			server:   kimsufiServer(),
		},
		{
			name: "bios-two-disks-predictable",
			args: `
nic_naming: predictable
ssh_keys: ["` + adminKey + `"]
disks: [/dev/sda, /dev/sdb]
ipv6: 2001:db8:1:10::1/64
ipv6_gateway: 2001:db8:1:ff:ff:ff:ff:ff
`,
			facts:    withSecondDisk(rescue()),
			mounts:   ext4Mounts,
			hardware: "ext4.nix",
			server:   twoDisks,
		},
		{
			name: "uefi-nvme",
			args: `
ssh_keys: ["` + adminKey + `"]
`,
			facts:    installerNVMe(1),
			mounts:   "/dev/nvme0n1p2 /mnt ext4 rw 0 0\n/dev/nvme0n1p1 /mnt/boot vfat rw 0 0\n",
			hardware: "uefi.nix",
			server:   uefi,
		},
		{
			name: "uefi-mirrored-zfs",
			args: `
ssh_keys: ["` + adminKey + `"]
host_id: 8425e349
`,
			facts: installerNVMe(2),
			mounts: "rpool/root/nixos /mnt zfs rw,xattr,posixacl 0 0\n" +
				"/dev/nvme0n1p1 /mnt/boot vfat rw 0 0\n/dev/nvme1n1p1 /mnt/boot1 vfat rw 0 0\n" +
				"rpool/home /mnt/home zfs rw,xattr,posixacl 0 0\n",
			hardware: "zfs-uefi-mirrored.nix",
			server:   uefiZFS,
		},
		{
			name: "bios-megaraid",
			args: `
ssh_keys: ["` + adminKey + `"]
disks: [/dev/sda]
`,
			facts:    withDriver(rescue(), "megaraid_sas"),
			mounts:   ext4Mounts,
			hardware: "ext4.nix",
			server:   kimsufiServer(),
		},
		{
			name: "zfs-bios-mirrored",
			args: `
ssh_keys: ["` + adminKey + `"]
disks: [` + sataA + `, ` + sataB + `]
`,
			facts: withBootOnEach(withSecondDisk(withIPv6(rescue()))),
			mounts: "rpool/root/nixos /mnt zfs rw,xattr,posixacl 0 0\n" +
				"rpool/home /mnt/home zfs rw,xattr,posixacl 0 0\n/dev/sda1 /mnt/boot ext4 rw 0 0\n/dev/sdb1 /mnt/boot-2 ext4 rw 0 0\n",
			hardware: "zfs-bios-mirrored.nix",
			server:   twoDisksZFS,
		},
		{
			name: "zfs-bios",
			args: `
ssh_keys: ["` + adminKey + `"]
disks: [/dev/sda]
`,
			facts: withIPv6(rescue()),
			mounts: "rpool/root/nixos /mnt zfs rw,xattr,posixacl 0 0\n" +
				"rpool/home /mnt/home zfs rw,xattr,posixacl 0 0\n/dev/sda1 /mnt/boot ext4 rw 0 0\n",
			hardware: "zfs.nix",
			server:   zfsServer,
		},
		{
			name: "ipv6-128-gateway-outside",
			args: `
ssh_keys: ["` + adminKey + `"]
ipv6: 2001:db8:1:10::1/128
ipv6_gateway: 2001:db8:1:ff:ff:ff:ff:ff
nameservers: [213.186.33.99, 2001:41d0:3:163::1]
`,
			facts:    rescue(),
			mounts:   ext4Mounts,
			hardware: "ext4.nix",
			server:   kimsufi128,
		},
		{
			name: "ipv4-32-link-local-gateway6",
			args: `
ssh_keys: ["` + adminKey + `"]
ipv6: 2001:db8:3::2/64
ipv6_gateway: fe80::1
`,
			facts:    hetznerFacts,
			mounts:   ext4Mounts,
			hardware: "ext4.nix",
			server:   hetzner,
		},
		{
			name: "no-ipv6",
			args: `
ssh_keys: ["` + adminKey + `"]
ipv6: none
`,
			facts:    withIPv6(rescue()),
			mounts:   ext4Mounts,
			hardware: "ext4.nix",
			server:   noV6,
		},
		{
			name: "quoting-imports-extra",
			args: `
hostname: ns1234.ip-203-0-113.eu
ssh_keys:
  - ` + "'" + trickyKey + "'" + `
  - |
    # the operator's second key
    ` + adminKey + `
imports: ["./local.nix", "./with space/extra.nix", "<nixpkgs/nixos/modules/profiles/minimal.nix>"]
extra: |
  time.timeZone = "Europe/Paris";
  environment.etc."motd".text = ''
    Welcome to ''${config.networking.hostName}
  '';
`,
			facts:    withIPv6(rescue()),
			mounts:   ext4Mounts,
			hardware: "ext4.nix",
			server:   fqdn,
			extraFile: map[string]string{
				"local.nix":            "{ ... }: { networking.firewall.allowedTCPPorts = [ 80 443 ]; }\n",
				"with space/extra.nix": "{ lib, ... }: { services.openssh.ports = lib.mkDefault [ 22 ]; }\n",
			},
		},
	}
}

// The fixtures tests of the module share.
var (
	rescue        = nixosgentest.Rescue
	kimsufiServer = nixosgentest.KimsufiServer
	grubRecord    = nixosgentest.GrubRecord
	evaluate      = nixosgentest.Evaluate
	requireNix    = nixosgentest.RequireNix
)
