package nixosgen

import (
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
)

// Arguments refused before the host is even looked at.
func TestNewRefuses(t *testing.T) {
	key := `ssh_keys: ["` + adminKey + `"]` + "\n"
	tests := []struct {
		name, args, want string
	}{
		{"no ssh key", "ipv4: 203.0.113.10/24\n", `missing required key "ssh_keys"`},
		{"empty key list", "ssh_keys: []\n", `"ssh_keys" is required`},
		{"only comments", "ssh_keys: ['# none yet']\n", "no public key"},
		{"private key path", "ssh_keys: [~/.ssh/id_ed25519]\n", "is not an OpenSSH public key"},
		{"sshd disabled in extra", key + "extra: 'services.openssh.enable = false;'\n", "no SSH server would run"},
		{"sshd forced off in extra", key + "extra: 'services.openssh.enable = lib.mkForce false;'\n", "no SSH server would run"},
		{"sshd off in a nested set", key + "extra: |\n  services.openssh = {\n    ports = [ 22 ];\n    enable = false;\n  };\n", "no SSH server would run"},
		{"keys forced empty", key + "extra: 'users.users.root.openssh.authorizedKeys.keys = lib.mkForce [ ];'\n", "root could not log in"},
		{"root login off", key + "extra: 'services.openssh.settings.PermitRootLogin = lib.mkForce \"no\";'\n", `PermitRootLogin to "no"`},
		{"bad nic naming", key + "nic_naming: ens3\n", `nic_naming "ens3"`},
		{"bad nic name", key + "nic_name: this-name-is-too-long\n", "nic_name"},
		{"bad host id", key + "host_id: xyz\n", "host_id"},
		{"bad state version", key + "state_version: unstable\n", "state_version"},
		{"relative root", key + "root: mnt\n", "root"},
		{"bad import", key + "imports: [local.nix]\n", "imports"},
		{"bad firmware", key + "firmware: coreboot\n", "firmware"},
		{"bad zfs", key + "zfs: maybe\n", "true, false or auto"},
		{"bad efi mount", key + "efi_mounts: [boot]\n", "efi_mounts"},
		{"unknown argument", key + "hostid: 8425e349\n", `unknown key "hostid"`},
		{"luks name", key + "luks: [{name: 'a b', device: /dev/sda3, key_file: /k}]\n", `luks: name "a b"`},
		{"luks device", key + "luks: [{name: root, device: sda3, key_file: /k}]\n", `luks root: device "sda3"`},
		{"luks relative key", key + "luks: [{name: root, device: /dev/sda3, key_file: k}]\n", `luks root: key_file "k"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newArgs(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// Comments and harmless settings are not mistaken for lock-outs.
func TestLintAllows(t *testing.T) {
	for _, extra := range []string{
		"# services.openssh.enable = false;\n",
		"/* services.openssh.enable = false; */\n",
		"services.openssh.ports = [ 22 2222 ];\n",
		"services.openssh.settings.PermitRootLogin = \"yes\";\n",
		"users.users.root.openssh.authorizedKeys.keys = [ \"ssh-ed25519 AAAA x\" ];\n",
		"services.nginx.enable = false;\n",
	} {
		if err := lintLockout(extra); err != nil {
			t.Errorf("lintLockout(%q) = %v", extra, err)
		}
	}
}

// Values and layouts the host contradicts, refused in Check.
func TestResolveRefuses(t *testing.T) {
	key := `ssh_keys: ["` + adminKey + `"]` + "\n"
	noMAC := rescue()
	noMAC.Interfaces[0].MAC = ""
	noPrediction := rescue()
	noPrediction.Interfaces[0].PredictedName = ""
	noPrediction.Interfaces[0].NetNames = facts.NetNames{}
	noRoute := rescue()
	noRoute.Gateway4, noRoute.Gateway4Interface = "", ""
	uefi := rescue()
	uefi.Firmware = "uefi"
	unknownFirmware := rescue()
	unknownFirmware.Firmware = ""
	twoNICs := rescue()
	twoNICs.Interfaces = append(twoNICs.Interfaces, facts.Interface{Name: "eth1", MAC: "00:25:90:aa:bb:02", IPv4: []string{"10.0.0.2/24"}})
	twoNICs.Gateway4Interface = ""

	tests := []struct {
		name   string
		args   string
		facts  *facts.Facts
		mounts string
		want   []string
	}{
		{
			name: "inventory ipv4 disagrees with facts", args: key + "ipv4: 203.0.113.11/24\n", facts: rescue(),
			want: []string{"ipv4 203.0.113.11/24 (from the task) disagrees with the host", "eth0 has 203.0.113.10/24"},
		},
		{
			name: "inventory prefix disagrees with facts", args: key + "ipv4: 203.0.113.10/32\n", facts: rescue(),
			want: []string{"ipv4 203.0.113.10/32", "203.0.113.10/24"},
		},
		{
			name: "inventory gateway disagrees with facts", args: key + "ipv4_gateway: 203.0.113.1\n", facts: rescue(),
			want: []string{"ipv4_gateway 203.0.113.1 (from the task) disagrees", "via 203.0.113.254"},
		},
		{
			name: "inventory ipv6 disagrees with facts", args: key + "ipv6: 2001:db8:1:11::1/64\n", facts: withIPv6(rescue()),
			want: []string{"ipv6 2001:db8:1:11::1/64 (from the task) disagrees", "2001:db8:1:10::1/64"},
		},
		{
			name: "inventory mac disagrees with facts", args: key + "mac: 00:25:90:aa:bb:99\n", facts: rescue(),
			want: []string{"mac 00:25:90:aa:bb:99 (from the task) disagrees", "00:25:90:aa:bb:01"},
		},
		{
			name: "ipv6 without a gateway", args: key + "ipv6: 2001:db8:1:10::1/64\n", facts: rescue(),
			want: []string{"ipv6_gateway", "on OVH it is 2001:db8:1:ff:ff:ff:ff:ff"},
		},
		{
			name: "ipv6 gateway without an address", args: key + "ipv6_gateway: 2001:db8:1:ff:ff:ff:ff:ff\n", facts: rescue(),
			want: []string{"set ipv6"},
		},
		{
			name: "bare ipv4 the host lacks", args: key + "ipv4: 198.51.100.1\n", facts: &facts.Facts{Firmware: "bios"},
			want: []string{"no prefix length"},
		},
		{
			name: "mac naming without a mac", args: key, facts: noMAC,
			want: []string{"nic_naming mac needs the uplink's MAC address"},
		},
		{
			name: "predictable without a prediction", args: key + "nic_naming: predictable\n", facts: noPrediction,
			want: []string{"no predicted name for eth0"},
		},
		{
			name: "unknown interface", args: key + "interface: eth7\n", facts: rescue(),
			want: []string{`interface "eth7"`, "it has eth0"},
		},
		{
			name: "several nics without a route", args: key, facts: twoNICs,
			want: []string{"no default route to tell its uplink among eth0, eth1"},
		},
		{
			name: "no gateway anywhere", args: key, facts: noRoute,
			want: []string{"ipv4_gateway: the host has no IPv4 default route"},
		},
		{
			name: "no facts at all", args: key, facts: &facts.Facts{},
			want: []string{"set ipv4", "firmware"},
		},
		{
			name: "unknown firmware", args: key, facts: unknownFirmware,
			want: []string{"set firmware: bios or uefi"},
		},
		{
			name: "unknown disk", args: key + "disks: [/dev/sdc]\n", facts: rescue(),
			want: []string{"the host has no disk /dev/sdc (it has /dev/sda)"},
		},
		{
			name: "zfs off while the layout has zfs", args: key + "zfs: false\n", facts: rescue(),
			mounts: "rpool/root/nixos /mnt zfs rw 0 0\n/dev/sda1 /mnt/boot ext4 rw 0 0\n",
			want:   []string{"zfs: false, but the layout mounts the ZFS dataset rpool/root/nixos at /"},
		},
		{
			name: "uefi without an esp", args: key, facts: uefi, mounts: ext4Mounts,
			want: []string{"boots in UEFI mode, but no EFI system partition is mounted at /mnt/boot"},
		},
		{
			name: "uefi with ext4 at /boot", args: key, facts: uefi,
			mounts: ext4Mounts + "/dev/sda2 /mnt/boot ext4 rw 0 0\n",
			want:   []string{"/mnt/boot holds /dev/sda2 (ext4), not a vfat EFI system partition"},
		},
		{
			name: "hostname that is no host name", args: key + "hostname: -bad-\n", facts: rescue(),
			want: []string{`hostname "-bad-"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := decodeArgs(t, tt.args)
			mounts, rootMounted := layoutMounts(tt.mounts, a.Root)
			_, err := resolve(a, inputs{name: "ks1", facts: tt.facts, mounts: mounts, rootMounted: rootMounted})
			if err == nil {
				t.Fatal("resolve accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// ZFS support cannot be left out by accident: the layout turns it on, and
// the host id is always set.
func TestZFSNeedsNoArgument(t *testing.T) {
	a := decodeArgs(t, `ssh_keys: ["`+adminKey+`"]`)
	mounts, ok := layoutMounts("rpool/root/nixos /mnt zfs rw 0 0\n", a.Root)
	s, err := resolve(a, inputs{name: "ks1", facts: rescue(), mounts: mounts, rootMounted: ok})
	if err != nil {
		t.Fatal(err)
	}
	conf := renderConfiguration(s)
	for _, want := range []string{`boot.supportedFilesystems = [ "zfs" ];`, `networking.hostId = "f88ef2c5";`, "zfsSupport = true;", "copyKernels = true;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("configuration lacks %s:\n%s", want, conf)
		}
	}
	if !strings.Contains(strings.Join(s.notes, "\n"), "compatibility=grub2") {
		t.Errorf("notes = %q, want the GRUB/ZFS warning", s.notes)
	}
}

func TestDefaults(t *testing.T) {
	twoDisks := withSecondDisk(rescue())
	tests := []struct {
		name    string
		args    string
		facts   *facts.Facts
		mounts  string
		inv     string
		check   func(s *system) bool
		explain string
	}{
		{
			name: "grub disks from what is mounted", facts: twoDisks, mounts: "/dev/sdb2 /mnt ext4 rw 0 0\n",
			check:   func(s *system) bool { return len(s.boot.devices) == 1 && s.boot.devices[0] == sataB },
			explain: "only sdb, by its model-serial id rather than its wwn",
		},
		{
			name: "grub disks by nvme partition name", facts: installerNVMe(2), args: "firmware: bios\n",
			mounts:  "/dev/nvme1n1p2 /mnt ext4 rw 0 0\n",
			check:   func(s *system) bool { return len(s.boot.devices) == 1 && s.boot.devices[0] == nvmeB },
			explain: "nvme1n1 by id",
		},
		{
			name: "every disk when nothing is mounted", facts: twoDisks,
			check:   func(s *system) bool { return len(s.boot.devices) == 2 },
			explain: "both disks",
		},
		{
			name: "empty values from unset inventory variables", facts: twoDisks,
			args: "disks: ['']\nnameservers: ''\nipv4: ''\nipv6: ''\nzfs: ''\nimports: ['']\n",
			check: func(s *system) bool {
				return len(s.boot.devices) == 2 && len(s.imports) == 0 && !s.boot.zfs && s.ipv4.String() == "203.0.113.10/24"
			},
			explain: "the defaults",
		},
		{
			name: "kernel names on request", facts: twoDisks, args: "stable_disk_names: false\ndisks: [/dev/sda, /dev/sdb]\n",
			check:   func(s *system) bool { return strings.Join(s.boot.devices, " ") == "/dev/sda /dev/sdb" },
			explain: "/dev/sda /dev/sdb",
		},
		{
			name: "an IP address as inventory name", facts: rescue(), inv: "203.0.113.10",
			check:   func(s *system) bool { return s.hostName == "ip-203-0-113-10" && s.domain == "" },
			explain: "ip-203-0-113-10",
		},
		{
			name: "loopback resolvers dropped, IPv6 ones kept only with IPv6", facts: func() *facts.Facts {
				f := rescue()
				f.Nameservers = []string{"127.0.0.53", "2001:41d0:3:163::1", "213.186.33.99"}
				return f
			}(),
			check:   func(s *system) bool { return strings.Join(s.nameservers, " ") == "213.186.33.99" },
			explain: "213.186.33.99",
		},
		{
			name: "eth1 kept with kernel names", facts: func() *facts.Facts {
				f := rescue()
				f.Interfaces[0].Name, f.Gateway4Interface = "eth1", "eth1"
				return f
			}(), args: "nic_naming: eth0\n",
			check:   func(s *system) bool { return s.nic.name == "eth1" },
			explain: "eth1",
		},
		{
			name: "esp at /boot/efi", facts: installerNVMe(1),
			mounts:  "/dev/nvme0n1p2 /mnt ext4 rw 0 0\n/dev/nvme0n1p1 /mnt/boot/efi vfat rw 0 0\n",
			check:   func(s *system) bool { return strings.Join(s.boot.efiMounts, " ") == "/boot/efi" },
			explain: "/boot/efi",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := decodeArgs(t, `ssh_keys: ["`+adminKey+`"]`+"\n"+tt.args)
			mounts, ok := layoutMounts(tt.mounts, a.Root)
			inv := tt.inv
			if inv == "" {
				inv = "ks1"
			}
			s, err := resolve(a, inputs{name: inv, facts: tt.facts, mounts: mounts, rootMounted: ok})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(s) {
				t.Errorf("got %+v, want %s", s, tt.explain)
			}
		})
	}
}

func TestOVHGateway6(t *testing.T) {
	for prefix, want := range map[string]string{
		"2001:db8:1:10::1/64":       "2001:db8:1:ff:ff:ff:ff:ff",
		"2001:41d0:1234:5678::/64":  "2001:41d0:1234:56ff:ff:ff:ff:ff",
		"2607:5300:60:1a2b::42/128": "2607:5300:60:1aff:ff:ff:ff:ff",
		"2001:41d0:a:f00::1/56":     "2001:41d0:a:fff:ff:ff:ff:ff",
	} {
		p := mustPrefix(t, prefix)
		if got := ovhGateway6(p).String(); got != want {
			t.Errorf("ovhGateway6(%s) = %s, want %s", prefix, got, want)
		}
	}
}
