package sim

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/sim/internal/devtree"
	"github.com/nixbook/nixbook/sim/internal/hostnet"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func TestISOSizesFitTheDisk(t *testing.T) {
	tests := []struct {
		disk                 int64
		system, swap, rescue string
	}{
		{8 << 30, "3GiB", "512MiB", "2GiB"},
		{1 << 30, "384MiB", "64MiB", "256MiB"},
		{16 << 30, "6GiB", "1GiB", "4GiB"},
		{64 << 30, "24GiB", "2GiB", "8GiB"},
		// Big enough: the playbook's own defaults.
		{2 << 40, "30GiB", "2GiB", "8GiB"},
	}
	for _, tt := range tests {
		s := isoSizesFor(tt.disk)
		if got := [3]string{mibText(s.system), mibText(s.swap), mibText(s.rescue)}; got != [3]string{tt.system, tt.swap, tt.rescue} {
			t.Errorf("%s disk: %v, want %s %s %s", mibText(tt.disk>>20), got, tt.system, tt.swap, tt.rescue)
		}
		// What the iso preset puts on the disk besides /home, with room for
		// /home, a bios_grub partition and the GPT.
		if used := s.system + s.swap + s.rescue + 1 + 2; used+8 > tt.disk>>20 {
			t.Errorf("%s disk: %d MiB of partitions leave no room for /home", mibText(tt.disk>>20), used)
		}
	}
}

// testFleet is a fleet as Up records it, without anything running.
func testFleet(disks map[string][]int64) *Fleet {
	f := &Fleet{
		dir:           "/srv/fleet",
		clientKeyFile: "/srv/fleet/id_ed25519",
		clientKey:     KeyPair{Public: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBtestkey nixbook-sim@abc"},
		creds:         Credentials{Endpoint: "http://127.0.0.1:9999/1.0", ApplicationKey: "ak", ApplicationSecret: "as", ConsumerKey: "ck"},
		plan:          hostnet.Plan{GW4: netip.MustParseAddr("203.0.113.254"), GW6: netip.MustParseAddr("2001:db8:1:ff:ff:ff:ff:ff")},
	}
	for i, name := range []string{"ks1", "ks2", "ks3"} {
		sizes, ok := disks[name]
		if !ok {
			continue
		}
		h := &Host{
			spec:    HostSpec{Name: name, MAC: "02:00:00:00:00:0" + string(rune('1'+i))},
			service: "ns310000" + string(rune('1'+i)) + ".ip-203-0-113.eu",
			v4:      netip.MustParsePrefix("203.0.113." + string(rune('1'+i)) + "/24"),
			v6:      netip.MustParsePrefix("2001:db8:1:" + string(rune('1'+i)) + "::1/64"),
		}
		for j, size := range sizes {
			h.disks = append(h.disks, &Disk{Name: devtree.DiskName(SATA, j), Kind: SATA, Size: size, Serial: "S" + name + string(rune('0'+j))})
		}
		f.hosts = append(f.hosts, h)
	}
	return f
}

func TestInventoryGivesSizesThatFitTheDisks(t *testing.T) {
	tests := []struct {
		name   string
		disks  map[string][]int64
		golden string
		// want is each host's sizes as the inventory resolves them.
		want map[string][3]string
	}{
		{
			name:   "same disks",
			disks:  map[string][]int64{"ks1": {8 << 30}, "ks2": {8 << 30}},
			golden: "fleet-same-disks.yml",
			want:   map[string][3]string{"ks1": {"3GiB", "512MiB", "2GiB"}, "ks2": {"3GiB", "512MiB", "2GiB"}},
		},
		{
			name:   "a host with other disks",
			disks:  map[string][]int64{"ks1": {8 << 30}, "ks2": {16 << 30, 32 << 30}, "ks3": {4 << 30}},
			golden: "fleet-mixed-disks.yml",
			want: map[string][3]string{
				"ks1": {"3GiB", "512MiB", "2GiB"},
				"ks2": {"6GiB", "1GiB", "4GiB"},
				"ks3": {"1536MiB", "256MiB", "1GiB"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := testFleet(tt.disks).Inventory()
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(golden, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != string(want) {
				t.Errorf("fleet.yml differs from %s (run with -update):\n%s", golden, data)
			}
			path := filepath.Join(t.TempDir(), "fleet.yml")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			inv, err := inventory.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			for name, sizes := range tt.want {
				h, ok := inv.Host(name)
				if !ok {
					t.Fatalf("no %s in the inventory", name)
				}
				got := [3]string{}
				for i, k := range []string{"system_size", "swap_size", "rescue_size"} {
					got[i], _ = h.Vars[k].(string)
				}
				if got != sizes {
					t.Errorf("%s: %v, want %v", name, got, sizes)
				}
				// The keys from before the sizes are all still there.
				for _, k := range []string{"ovh_service", "disks", "disk_names", "ipv4", "ipv4_gateway", "ipv6", "ipv6_gateway", "mac", "ovh_endpoint", "rescue_ssh_key"} {
					if h.Vars[k] == nil {
						t.Errorf("%s lacks %s", name, k)
					}
				}
			}
		})
	}
}
