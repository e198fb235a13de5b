package facts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current parser")

func TestParseGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no testdata/*.txt samples")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".txt")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(raw)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := json.MarshalIndent(f, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(in, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("parsed %s differs from %s (run with -update after checking):\n%s", in, golden, got)
			}
		})
	}
}

func mustParseSample(t *testing.T, name string) *Facts {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The golden files pin everything; these spell out the facts later modules
// depend on, so a careless -update cannot bless a regression in them.
func TestParseSamplesKeyFacts(t *testing.T) {
	type disk struct {
		path  string
		size  int64
		parts []string // path:number:fstype:mountpoint
	}
	tests := []struct {
		sample        string
		rescue        bool
		firmware      string
		primary       string
		predicted     string
		mac           string
		ipv4, ipv6    []string
		leases        []string // dynamic IPv4
		gw4, gw6      string
		nameservers   []string
		disks         []disk
		memoryMB      int64
		cpus          int
		osID, variant string
	}{
		{
			sample: "kimsufi-rescue", rescue: true, firmware: "bios",
			primary: "eth0", predicted: "enp2s0", mac: "00:22:4d:ab:cd:ef",
			ipv4: []string{"203.0.113.10/24"}, ipv6: []string{"2001:db8:1:2::10/64"},
			leases: []string{"203.0.113.10/24"}, gw4: "203.0.113.254", gw6: "2001:db8:1:ff:ff:ff:ff:ff",
			nameservers: []string{"198.51.100.53", "2001:db8:ffff::53"},
			disks: []disk{{"/dev/sda", 2000398934016, []string{
				"/dev/sda1:1:ext4:/mnt", "/dev/sda2:2:swap:", "/dev/sda4:4:ext4:/root/rescue"}}},
			memoryMB: 3893, cpus: 4, osID: "debian",
		},
		{
			sample: "nixos-installer-nvme", rescue: false, firmware: "uefi",
			primary: "enp3s0", predicted: "enp3s0", mac: "a8:a1:59:12:34:56",
			ipv4: []string{"198.51.100.20/24"}, ipv6: []string{"2001:db8:3:4:aaa1:59ff:fe12:3456/64"},
			leases: []string{"198.51.100.20/24"}, gw4: "198.51.100.254", gw6: "fe80::1",
			nameservers: []string{"198.51.100.53"},
			disks: []disk{
				{"/dev/nvme0n1", 512110190592, []string{"/dev/nvme0n1p1:1:vfat:", "/dev/nvme0n1p2:2:zfs_member:"}},
				{"/dev/nvme1n1", 512110190592, nil},
			},
			memoryMB: 64141, cpus: 12, osID: "nixos", variant: "installer",
		},
		{
			sample: "busybox-minimal", rescue: false, firmware: "bios",
			primary: "eth0", predicted: "", mac: "52:54:00:12:34:56",
			ipv4: []string{"192.0.2.50/24"}, ipv6: []string{"2001:db8:5:6::50/64"},
			gw4: "192.0.2.254", gw6: "2001:db8:5:6::1",
			nameservers: []string{"192.0.2.53"},
			disks:       []disk{{"/dev/vda", 41943040 * 512, []string{"/dev/vda1:1::/boot", "/dev/vda2:2::/"}}},
			memoryMB:    988, cpus: 2, osID: "buildroot",
		},
		{
			sample: "debian9-rescue-old-lsblk", rescue: true, firmware: "bios",
			primary: "eth0", predicted: "eno1", mac: "0c:c4:7a:aa:bb:cc",
			ipv4: []string{"192.0.2.77/24", "198.51.100.7/32"}, ipv6: []string{"2001:db8:7:1::1/64"},
			gw4: "192.0.2.254", gw6: "2001:db8:7:ff:ff:ff:ff:ff",
			nameservers: []string{"192.0.2.53"},
			disks: []disk{
				{"/dev/sda", 500107862016, []string{"/dev/sda1:1::", "/dev/sda2:2:linux_raid_member:"}},
				{"/dev/sdb", 500107862016, []string{"/dev/sdb1:1::", "/dev/sdb2:2:linux_raid_member:"}},
			},
			memoryMB: 15935, cpus: 8, osID: "debian",
		},
		{
			sample: "fleet-loop", rescue: true, firmware: "bios",
			primary: "eth0", predicted: "", mac: "02:00:cb:00:71:15",
			ipv4: []string{"203.0.113.21/24"}, ipv6: []string{"2001:db8:1:15::1/64"},
			gw4: "203.0.113.254", gw6: "2001:db8:1:ff:ff:ff:ff:ff",
			nameservers: []string{},
			disks: []disk{
				{"/dev/sda", 10737418240, []string{"/dev/sda1:1:ext4:/mnt"}},
				{"/dev/sdb", 5368709120, nil},
			},
			memoryMB: 24105, cpus: 2, osID: "debian",
		},
	}
	for _, tt := range tests {
		t.Run(tt.sample, func(t *testing.T) {
			f := mustParseSample(t, tt.sample)
			if f.Rescue != tt.rescue || f.Firmware != tt.firmware {
				t.Errorf("rescue, firmware = %v, %q; want %v, %q", f.Rescue, f.Firmware, tt.rescue, tt.firmware)
			}
			if f.MemoryMB != tt.memoryMB || f.CPUs != tt.cpus {
				t.Errorf("memory, cpus = %d MB, %d; want %d MB, %d", f.MemoryMB, f.CPUs, tt.memoryMB, tt.cpus)
			}
			if f.OS.ID != tt.osID || f.OS.VariantID != tt.variant {
				t.Errorf("os = %+v; want id %q variant %q", f.OS, tt.osID, tt.variant)
			}
			p := f.PrimaryInterface()
			if p == nil {
				t.Fatalf("no primary interface in %+v", f.Interfaces)
			}
			if p.Name != tt.primary || p.PredictedName != tt.predicted || p.MAC != tt.mac {
				t.Errorf("primary = %s predicted %q mac %s; want %s predicted %q mac %s",
					p.Name, p.PredictedName, p.MAC, tt.primary, tt.predicted, tt.mac)
			}
			if !slices.Equal(p.IPv4, tt.ipv4) || !slices.Equal(p.IPv6, tt.ipv6) {
				t.Errorf("addresses = %v %v; want %v %v", p.IPv4, p.IPv6, tt.ipv4, tt.ipv6)
			}
			if want := append([]string{}, tt.leases...); !slices.Equal(p.IPv4Dynamic, want) {
				t.Errorf("dynamic IPv4 = %v; want %v", p.IPv4Dynamic, want)
			}
			if f.Gateway4 != tt.gw4 || f.Gateway6 != tt.gw6 {
				t.Errorf("gateways = %q %q; want %q %q", f.Gateway4, f.Gateway6, tt.gw4, tt.gw6)
			}
			if !slices.Equal(f.Nameservers, tt.nameservers) {
				t.Errorf("nameservers = %q; want %q", f.Nameservers, tt.nameservers)
			}
			if len(f.Disks) != len(tt.disks) {
				t.Fatalf("disks = %+v; want %d", f.Disks, len(tt.disks))
			}
			for i, want := range tt.disks {
				d := f.Disks[i]
				var parts []string
				for _, p := range d.Partitions {
					parts = append(parts, strings.Join([]string{p.Path, strconv.Itoa(p.Number), p.FSType, p.Mountpoint}, ":"))
				}
				if d.Path != want.path || d.SizeBytes != want.size || !slices.Equal(parts, want.parts) {
					t.Errorf("disk %d = %s %d %q; want %s %d %q", i, d.Path, d.SizeBytes, parts, want.path, want.size, want.parts)
				}
			}
			for _, in := range f.Interfaces {
				if in.Name == "lo" {
					t.Error("loopback listed among interfaces")
				}
			}
		})
	}
}

// Only the address ip marks dynamic is a lease, whatever the label or the
// other addresses on the interface.
func TestIPAddrLeases(t *testing.T) {
	out := "==> hostname\nks1\n==> boot_id\n4f6c1d0e-8a4b-4e5e-9a57-2c9d8e1b7f31\n==> ip-addr\n" +
		"2: eth0    inet 203.0.113.77/24 scope global dynamic eth0\\       valid_lft 3600sec preferred_lft 3600sec\n" +
		"2: eth0    inet 203.0.113.10/24 brd 203.0.113.255 scope global eth0\\       valid_lft forever preferred_lft forever\n" +
		"3: dynamic    inet 198.51.100.5/24 scope global dynamic\\       valid_lft forever preferred_lft forever\n" +
		"2: eth0    inet6 2001:db8::5/64 scope global dynamic mngtmpaddr \\       valid_lft 2591993sec preferred_lft 604793sec\n"
	f, err := Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if in := f.Interface("eth0"); in == nil || !slices.Equal(in.IPv4Dynamic, []string{"203.0.113.77/24"}) {
		t.Errorf("eth0 = %+v; want only 203.0.113.77/24 dynamic", in)
	}
	if in := f.Interface("dynamic"); in == nil || len(in.IPv4Dynamic) != 0 {
		t.Errorf("an interface labelled dynamic = %+v; want no lease", in)
	}
}

func TestIsRescue(t *testing.T) {
	debian := OSRelease{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"}
	tests := []struct {
		hostname string
		os       OSRelease
		want     bool
	}{
		{"rescue-customer-eu", debian, true},
		{"rescue12-customer-ca", debian, true},
		{"rescue64", debian, true},
		{"rescue.ovh.net", debian, true},
		{"rescue-pro", debian, true},
		{"RESCUE-CUSTOMER-CA", debian, true},
		{"ns326340.ip-203-0-113.eu", debian, false},
		{"rescuer", debian, false},
		{"myrescue", debian, false},
		{"nixos", OSRelease{ID: "nixos", VariantID: "installer"}, false},
		{"host", OSRelease{ID: "debian", VariantID: "rescue"}, true},
		{"host", OSRelease{ID: "debian", PrettyName: "OVH Rescue (Debian 12)"}, true},
	}
	for _, tt := range tests {
		if got := IsRescue(tt.hostname, tt.os); got != tt.want {
			t.Errorf("IsRescue(%q, %+v) = %v; want %v", tt.hostname, tt.os, got, tt.want)
		}
	}
}

func TestDiskLookup(t *testing.T) {
	f := mustParseSample(t, "kimsufi-rescue")
	tests := []struct {
		name string
		want string // "" for not found
	}{
		{"/dev/sda", "/dev/sda"},
		{"sda", "/dev/sda"},
		{"/dev/disk/by-id/ata-HGST_HUS724020ALA640_PN2134P5G3ABCD", "/dev/sda"},
		{"/dev/disk/by-id/wwn-0x5000cca22de1a2b3", "/dev/sda"},
		{"/dev/disk/by-id/wwn-0x5000cca22de1a2b3-part1", ""},
		{"/dev/sda1", ""},
		{"/dev/sdb", ""},
	}
	for _, tt := range tests {
		d, ok := f.Disk(tt.name)
		switch {
		case tt.want == "" && ok:
			t.Errorf("Disk(%q) = %s; want not found", tt.name, d.Path)
		case tt.want != "" && (!ok || d.Path != tt.want):
			t.Errorf("Disk(%q) = %v, %v; want %s", tt.name, d, ok, tt.want)
		}
	}
	d, _ := f.Disk("/dev/sda")
	d.Model = "changed"
	if f.Disks[0].Model != "changed" {
		t.Error("Disk returns a copy, not the disk in the facts")
	}
}

func TestPrimaryInterfaceWithoutDefaultRoute(t *testing.T) {
	f := &Facts{Interfaces: []Interface{{Name: "eth0"}}}
	if p := f.PrimaryInterface(); p != nil {
		t.Errorf("PrimaryInterface = %+v; want nil without a default route", p)
	}
	f.Gateway6Interface = "eth0"
	if p := f.PrimaryInterface(); p == nil || p.Name != "eth0" {
		t.Errorf("PrimaryInterface = %+v; want eth0 from the IPv6 default route", p)
	}
}

func TestMap(t *testing.T) {
	f := mustParseSample(t, "nixos-installer-nvme")
	m := f.Map()
	if m["memory_mb"] != int64(64141) || m["cpus"] != int64(12) || m["rescue"] != false {
		t.Errorf("scalars = %#v %#v %#v", m["memory_mb"], m["cpus"], m["rescue"])
	}
	osm, ok := m["os"].(map[string]any)
	if !ok || osm["variant_id"] != "installer" {
		t.Errorf("os = %#v", m["os"])
	}
	disks, ok := m["disks"].([]any)
	if !ok || len(disks) != 2 {
		t.Fatalf("disks = %#v", m["disks"])
	}
	d0 := disks[0].(map[string]any)
	if d0["path"] != "/dev/nvme0n1" || d0["size_bytes"] != int64(512110190592) {
		t.Errorf("disk 0 = %#v", d0)
	}
	parts := d0["partitions"].([]any)
	if p := parts[1].(map[string]any); p["number"] != int64(2) || p["partlabel"] != "disk-main-zfs" {
		t.Errorf("partition 2 = %#v", p)
	}
	ifaces := m["interfaces"].([]any)
	if i := ifaces[0].(map[string]any); i["predicted_name"] != "enp3s0" || i["ipv4"].([]any)[0] != "198.51.100.20/24" {
		t.Errorf("interface 0 = %#v", i)
	}
	// An empty list stays a list, so templates can loop over it.
	if _, ok := disks[1].(map[string]any)["partitions"].([]any); !ok {
		t.Errorf("empty partitions = %#v; want []any", disks[1].(map[string]any)["partitions"])
	}
}

func TestParseErrors(t *testing.T) {
	kimsufi, err := os.ReadFile("testdata/kimsufi-rescue.txt")
	if err != nil {
		t.Fatal(err)
	}
	truncated := kimsufi[:bytes.Index(kimsufi, []byte(`"children"`))]
	tests := []struct {
		name string
		out  string
		want string
	}{
		{"empty", "", "no sections"},
		{"not the script", "Permission denied\n", "no sections"},
		{"no boot id", "==> hostname\nx\n", "boot_id"},
		{"truncated lsblk", string(truncated), "lsblk"},
		{"bad memtotal", "==> hostname\nx\n==> boot_id\ny\n==> memtotal_kb\nlots\n", "MemTotal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.out))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %v; want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestGatherRunsScriptAsOneArgv(t *testing.T) {
	sample, err := os.ReadFile("testdata/kimsufi-rescue.txt")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	f, err := Gather(context.Background(), func(_ context.Context, argv []string) ([]byte, error) {
		got = argv
		return sample, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"sh", "-c", Script()}) {
		t.Errorf("argv = %q", got)
	}
	if f.Hostname != "rescue-customer-eu" {
		t.Errorf("hostname = %q", f.Hostname)
	}

	boom := errors.New("connection lost")
	_, err = Gather(context.Background(), func(context.Context, []string) ([]byte, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Errorf("Gather error = %v; want it to wrap %v", err, boom)
	}
}

func TestNaturalCompare(t *testing.T) {
	want := []string{"/dev/nvme0n1", "/dev/nvme0n1p2", "/dev/nvme0n1p10", "/dev/nvme2n1", "/dev/nvme10n1", "/dev/sda", "/dev/sdb", "/dev/vda"}
	in := slices.Clone(want)
	slices.Reverse(in)
	slices.SortFunc(in, naturalCompare)
	if !slices.Equal(in, want) {
		t.Errorf("sorted = %q; want %q", in, want)
	}
}

func TestProcAddressDecoding(t *testing.T) {
	tests := []struct{ hex, want string }{
		{"FE7100CB", "203.0.113.254"},
		{"010200C0", "192.0.2.1"},
		{"00000000", "0.0.0.0"},
	}
	for _, tt := range tests {
		a, ok := hexAddr4(tt.hex)
		if !ok || a.String() != tt.want {
			t.Errorf("hexAddr4(%s) = %v, %v; want %s", tt.hex, a, ok, tt.want)
		}
	}
	a, ok := hexAddr6("20010db8000100ff00ff00ff00ff00ff")
	if !ok || a.String() != "2001:db8:1:ff:ff:ff:ff:ff" {
		t.Errorf("hexAddr6 = %v, %v", a, ok)
	}
}

func TestUnescapeOctal(t *testing.T) {
	tests := map[string]string{
		`/mnt/my\040dir`: "/mnt/my dir",
		`/a\011b`:        "/a\tb",
		`/plain`:         "/plain",
		`/end\04`:        `/end\04`,
	}
	for in, want := range tests {
		if got := UnescapeOctal(in); got != want {
			t.Errorf("UnescapeOctal(%q) = %q; want %q", in, got, want)
		}
	}
}
