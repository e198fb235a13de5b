package hostnet

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// A subnet holding an address the machine reaches by name (its package
// mirror in /etc/hosts, its name server) is never given to a fleet.
func TestMachineNamedAddrs(t *testing.T) {
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts")
	resolv := filepath.Join(dir, "resolv.conf")
	os.WriteFile(hosts, []byte("127.0.0.1 localhost\n::1 localhost\n203.0.113.80    deb.debian.org # the mirror\n# 198.51.100.9 commented\nnot-an-address name\n"), 0o644)
	os.WriteFile(resolv, []byte("search example\nnameserver 192.0.2.53\nnameserver 127.0.0.53\n"), 0o644)
	got := machineNamedAddrs(hosts, resolv)
	want := []namedAddr{{netip.MustParseAddr("203.0.113.80"), "deb.debian.org"}, {netip.MustParseAddr("192.0.2.53"), "the name server"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, tt := range []struct {
		subnet string
		taken  bool
	}{{"203.0.113.0/24", true}, {"198.51.100.0/24", false}, {"192.0.2.0/24", true}, {"198.18.0.0/24", false}} {
		p, err := NewPlan(dir, netip.MustParsePrefix(tt.subnet), netip.Prefix{})
		if err != nil {
			t.Fatal(err)
		}
		if err := namedConflict(p, got); (err != nil) != tt.taken {
			t.Errorf("%s: %v, want taken %v", tt.subnet, err, tt.taken)
		}
	}
}

// The hosts of download URLs (apt sources, the Go proxy) count too, by
// what they resolve to; loopback does not.
func TestResolvedAddrs(t *testing.T) {
	got := resolvedAddrs(context.Background(), []string{"http://127.0.0.1/debian", "203.0.113.80", "https://192.0.2.9:8443/go", "https://192.0.2.9/again"})
	if len(got) != 2 || got[0].addr != netip.MustParseAddr("203.0.113.80") || got[1].addr != netip.MustParseAddr("192.0.2.9") {
		t.Fatalf("got %v", got)
	}
}

func TestPlanAddressesLikeOVH(t *testing.T) {
	tests := []struct {
		subnet, subnet6     string
		host                int
		v4, v6, gw4, gw6    string
		bridgePrefix6, name string
	}{
		{subnet: "203.0.113.0/24", host: 1, v4: "203.0.113.1/24", v6: "2001:db8:1:1::1/64", gw4: "203.0.113.254", gw6: "2001:db8:1:ff:ff:ff:ff:ff", bridgePrefix6: "2001:db8:1::/56"},
		{subnet: "198.51.100.0/24", host: 253, v4: "198.51.100.253/24", v6: "2001:db8:2:fd::1/64", gw4: "198.51.100.254", gw6: "2001:db8:2:ff:ff:ff:ff:ff", bridgePrefix6: "2001:db8:2::/56"},
		{subnet: "198.18.5.7/24", host: 10, v4: "198.18.5.10/24", v6: "2001:db8:1205:a::1/64", gw4: "198.18.5.254", gw6: "2001:db8:1205:ff:ff:ff:ff:ff", bridgePrefix6: "2001:db8:1205::/56"},
		{subnet: "192.0.2.0/24", subnet6: "2001:db8:aa00::/40", host: 2, v4: "192.0.2.2/24", v6: "2001:db8:aa00:2::1/64", gw4: "192.0.2.254", gw6: "2001:db8:aa00:ff:ff:ff:ff:ff", bridgePrefix6: "2001:db8:aa00::/56"},
	}
	for _, tt := range tests {
		var p6 netip.Prefix
		if tt.subnet6 != "" {
			p6 = netip.MustParsePrefix(tt.subnet6)
		}
		p, err := NewPlan("/srv/fleet", netip.MustParsePrefix(tt.subnet), p6)
		if err != nil {
			t.Fatal(err)
		}
		v4, v6 := p.HostV4(tt.host), p.HostV6(tt.host)
		if v4.String() != tt.v4 || v6.String() != tt.v6 || p.GW4.String() != tt.gw4 || p.GW6.String() != tt.gw6 || p.Prefix6.String() != tt.bridgePrefix6 {
			t.Errorf("%s host %d: %s %s gw %s %s on %s", tt.subnet, tt.host, v4, v6, p.GW4, p.GW6, p.Prefix6)
		}
		// OVH's rule: the gateway is outside the host's /64, so the route
		// to it must be on-link; it is inside the bridge's range.
		if v6.Masked().Contains(p.GW6) || !p.Prefix6.Contains(p.GW6) || !p.Prefix6.Contains(v6.Addr()) {
			t.Errorf("%s: gateway %s vs host %s and bridge %s", tt.subnet, p.GW6, v6, p.Prefix6)
		}
		if len(p.Bridge) > 15 || len(p.VethName(MaxHosts)) > 15 {
			t.Errorf("link names too long for the kernel: %s %s", p.Bridge, p.VethName(MaxHosts))
		}
	}
	if _, err := NewPlan("/x", netip.MustParsePrefix("10.0.0.0/16"), netip.Prefix{}); err == nil {
		t.Errorf("a /16 was accepted")
	}
	a, _ := NewPlan("/srv/a", netip.MustParsePrefix(DefaultSubnet), netip.Prefix{})
	b, _ := NewPlan("/srv/b", netip.MustParsePrefix(DefaultSubnet), netip.Prefix{})
	if a.Bridge == b.Bridge || a.NetnsName("ks1") == b.NetnsName("ks1") {
		t.Errorf("fleets of two directories share names: %s %s", a.Bridge, b.Bridge)
	}
}
