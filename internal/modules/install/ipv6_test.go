package install

import (
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
)

func installerFacts() *facts.Facts {
	return &facts.Facts{
		Interfaces: []facts.Interface{{Name: "eth0", IPv4: []string{"203.0.113.10/24"}, IPv6: []string{"2001:db8:1:2::10/64"}}},
		Gateway6:   "2001:db8:1:ff:ff:ff:ff:ff", Gateway6Interface: "eth0",
	}
}

func TestExpectIPv6(t *testing.T) {
	tests := []struct {
		name   string
		vars   map[string]any
		before *facts.Facts
		want   string // "addr via gw", "" for no check
	}{
		{"from the installer", nil, installerFacts(), "2001:db8:1:2::10/64 via 2001:db8:1:ff:ff:ff:ff:ff"},
		{"from the inventory", map[string]any{"ipv6": "2001:db8:9::1/64", "ipv6_gateway": "2001:db8:9:ff:ff:ff:ff:ff"}, installerFacts(), "2001:db8:9::1/64 via 2001:db8:9:ff:ff:ff:ff:ff"},
		{"the inventory's address, the installer's gateway", map[string]any{"ipv6": "2001:db8:1:2::10/64"}, installerFacts(), "2001:db8:1:2::10/64 via 2001:db8:1:ff:ff:ff:ff:ff"},
		{"ipv6: none", map[string]any{"ipv6": "none"}, installerFacts(), ""},
		{"no IPv6 anywhere", nil, &facts.Facts{Interfaces: []facts.Interface{{Name: "eth0", IPv4: []string{"203.0.113.10/24"}}}}, ""},
		{"an IPv4 address as ipv6", map[string]any{"ipv6": "203.0.113.10/24"}, installerFacts(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := expectIPv6(tt.vars["ipv6"], tt.vars["ipv6_gateway"], tt.before)
			got := ""
			if ok {
				got = e.addr.String() + " via " + e.gw.String()
			}
			if got != tt.want {
				t.Errorf("expectIPv6 = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIPv6Problems(t *testing.T) {
	e, _ := expectIPv6(nil, nil, installerFacts())
	tests := []struct {
		name   string
		change func(f *facts.Facts)
		want   string
	}{
		{"as expected", func(*facts.Facts) {}, ""},
		{"no default route", func(f *facts.Facts) { f.Gateway6 = "" }, "it has no IPv6 default route (want one via 2001:db8:1:ff:ff:ff:ff:ff)"},
		{"another gateway", func(f *facts.Facts) { f.Gateway6 = "fe80::1" }, "its IPv6 default route goes via fe80::1, not the server's gateway 2001:db8:1:ff:ff:ff:ff:ff"},
		{"no address", func(f *facts.Facts) { f.Interfaces[0].IPv6 = nil }, "it has no IPv6 address (want 2001:db8:1:2::10/64)"},
		{"another address", func(f *facts.Facts) { f.Interfaces[0].IPv6 = []string{"2001:db8:1:3::10/64"} }, "it has IPv6 2001:db8:1:3::10/64 on eth0, not 2001:db8:1:2::10/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := installerFacts()
			tt.change(f)
			if got := strings.Join(ipv6Problems(e, f), "; "); got != tt.want {
				t.Errorf("ipv6Problems = %q, want %q", got, tt.want)
			}
		})
	}
}
