package sim

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
		p, err := newPlan(dir, netip.MustParsePrefix(tt.subnet), netip.Prefix{})
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
