package rescue

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/sim/ovhapi"
)

// TestRefusesAServerThatIsNotTheHost: before any write through the API, and
// in a dry run, the service must be the host nixbook dials; a typo that
// names another server of the account never reboots that server.
func TestRefusesAServerThatIsNotTheHost(t *testing.T) {
	const other = "ns2.ip-203-0-113.eu"
	tests := []struct {
		name    string
		args    string
		dial    string
		service string
		state   string
		lookup  ovh.LookupFunc
		want    string // "" when Check must succeed
	}{
		{name: "own service", dial: "203.0.113.10", service: testSN},
		{name: "own IPv6 block", dial: "2001:db8:1:2a00::1", service: testSN},
		{name: "a name that resolves to it", dial: "ks1.example.net", service: testSN,
			lookup: lookupTable(map[string]string{"ks1.example.net": "203.0.113.10"})},
		{name: "another server", dial: "203.0.113.10", service: other,
			want: "ks1: refusing to drive OVH service ns2.ip-203-0-113.eu: it is not this host (nixbook dials 203.0.113.10; OVH gives ns2.ip-203-0-113.eu the address 203.0.113.11 and the blocks 203.0.113.11/32, 2001:db8:1:2b00::/64); check ovh_service or the host's address at fleet.yml:7"},
		{name: "another server, harddisk", args: "boot: harddisk", dial: "203.0.113.10", service: other,
			want: "it is not this host"},
		{name: "a name that resolves elsewhere", dial: "ks1.example.net", service: testSN,
			lookup: lookupTable(map[string]string{"ks1.example.net": "198.51.100.7"}),
			want:   "nixbook dials ks1.example.net = 198.51.100.7"},
		{name: "a name that does not resolve", dial: "ks1.invalid", service: testSN,
			lookup: lookupTable(nil), want: "cannot prove that OVH service ns1.ip-203-0-113.eu is this host: resolve ks1.invalid"},
		{name: "loopback", dial: "127.0.0.1", service: testSN, want: "it is not this host"},
		{name: "hacked", dial: "203.0.113.10", service: testSN, state: "hacked",
			want: `ks1: refusing to drive OVH service ns1.ip-203-0-113.eu: its state is "hacked", not "ok" (OVH flagged it as compromised`},
		{name: "hackedBlocked", args: "boot: harddisk", dial: "203.0.113.10", service: testSN, state: "hackedBlocked", want: `its state is "hackedBlocked"`},
		{name: "error", dial: "203.0.113.10", service: testSN, state: "error", want: `its state is "error"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAccount(t, ovhapi.Config{})
			a.emu.AddServer(ovhapi.Server{Name: other, IP: "203.0.113.11", IPv6Block: "2001:db8:1:2b00::/64", BootID: 230242})
			s := a.add(testSN, 230242)
			// The same server, in the state the case wants.
			a.emu.AddServer(ovhapi.Server{Name: testSN, IP: "203.0.113.10", IPv6Block: "2001:db8:1:2a00::/64", BootID: 230242, State: tt.state})
			s.Address = tt.dial
			s.APIVars["ovh_service"] = tt.service
			m := testModule(t, tt.args, s)
			s.API.Lookup = tt.lookup
			p, err := m.Check(context.Background(), s)
			for _, name := range []string{testSN, other} {
				for _, c := range a.emu.Calls(name) {
					if c.Method != "GET" {
						t.Errorf("Check sent %s %s", c.Method, c.Path)
					}
				}
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if !p.Changed() {
					t.Fatalf("no change planned")
				}
				return
			}
			if err == nil {
				t.Fatalf("Check planned %v, want an error with %q", p.Commands(), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check: %v\nwant it to contain %q", err, tt.want)
			}
			var idErr *ovh.IdentityError
			var stErr *ovh.StateError
			if !errors.As(err, &idErr) && !errors.As(err, &stErr) && !strings.Contains(err.Error(), "cannot prove") {
				t.Errorf("error %T is neither an IdentityError nor a StateError", err)
			}
		})
	}
}

func lookupTable(names map[string]string) ovh.LookupFunc {
	return func(_ context.Context, _, host string) ([]netip.Addr, error) {
		a, ok := names[host]
		if !ok {
			return nil, errors.New("no such host")
		}
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
}
