package kexec

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
)

func rescueFacts() *facts.Facts {
	return &facts.Facts{
		Interfaces: []facts.Interface{{Name: "eth0", MAC: "02:00:00:00:00:01", IPv4: []string{"203.0.113.10/24"}, IPv6: []string{"2001:db8:1:2::10/64"}}},
		Gateway4:   "203.0.113.254", Gateway4Interface: "eth0",
		Gateway6: "2001:db8:1:ff:ff:ff:ff:ff", Gateway6Interface: "eth0",
	}
}

func TestInstallerNetworkDrift(t *testing.T) {
	u, ok := rescueUplink(rescueFacts())
	if !ok || u.nic != "eth0" || u.v4 != netip.MustParsePrefix("203.0.113.10/24") || u.gw6.String() != "2001:db8:1:ff:ff:ff:ff:ff" {
		t.Fatalf("rescueUplink = %+v, %v", u, ok)
	}
	tests := []struct {
		name   string
		change func(f *facts.Facts)
		v4, v6 string
	}{
		{"as the rescue", func(*facts.Facts) {}, "", ""},
		{"renamed NIC, same MAC", func(f *facts.Facts) { f.Interfaces[0].Name = "enp3s0" }, "", ""},
		{"new DHCP address", func(f *facts.Facts) { f.Interfaces[0].IPv4 = []string{"203.0.113.77/24"} }, "came up on 203.0.113.77/24 (a new DHCP lease?) instead of the rescue's 203.0.113.10/24", ""},
		{"no IPv4 at all", func(f *facts.Facts) { f.Interfaces[0].IPv4 = nil }, "came up without the rescue's IPv4 address 203.0.113.10/24", ""},
		{"no default route", func(f *facts.Facts) { f.Gateway4 = "" }, "came up without the IPv4 default route via 203.0.113.254", ""},
		{"no IPv6", func(f *facts.Facts) { f.Interfaces[0].IPv6, f.Gateway6 = nil, "" }, "", "came up without the rescue's IPv6 address 2001:db8:1:2::10/64"},
		{"no IPv6 route", func(f *facts.Facts) { f.Gateway6 = "" }, "", "came up without the IPv6 default route via 2001:db8:1:ff:ff:ff:ff:ff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := rescueFacts()
			tt.change(f)
			if d := compare(u, f); d.v4 != tt.v4 || d.v6 != tt.v6 {
				t.Errorf("compare = %+v, want v4 %q, v6 %q", d, tt.v4, tt.v6)
			}
		})
	}
}

func TestRestorePlansOneBatchPerFamily(t *testing.T) {
	u, _ := rescueUplink(rescueFacts())
	var c modules.Change
	r := planRestore(&c, u)
	if got := strings.Join(c.Commands, "\n"); got != "ip -4 -batch -\nip -6 -batch -" {
		t.Errorf("commands:\n%s", got)
	}
	if got := strings.Join(r.v4, "; "); got != "addr flush dev eth0 scope global; addr add 203.0.113.10/24 dev eth0; route replace default via 203.0.113.254 dev eth0 onlink" {
		t.Errorf("IPv4 batch: %s", got)
	}
	if got := strings.Join(r.v6, "; "); got != "addr flush dev eth0 scope global; addr add 2001:db8:1:2::10/64 dev eth0; route replace 2001:db8:1:ff:ff:ff:ff:ff/128 dev eth0; route replace default via 2001:db8:1:ff:ff:ff:ff:ff dev eth0" {
		t.Errorf("IPv6 batch: %s", got)
	}
	p := &plan{uplink: u, uplinkOK: true}
	if got := strings.Join(p.elsewhere("203.0.113.10"), ","); got != "2001:db8:1:2::10" {
		t.Errorf("elsewhere = %s", got)
	}
}

// The uplink is a lease when facts say ip marks its address dynamic, not
// when another address of the interface is one.
func TestRescueUplinkLease(t *testing.T) {
	tests := []struct {
		name    string
		dynamic []string
		want    bool
	}{
		{"static", nil, false},
		{"lease", []string{"203.0.113.10/24"}, true},
		{"another address's lease", []string{"203.0.113.77/24"}, false},
	}
	for _, tt := range tests {
		f := rescueFacts()
		f.Interfaces[0].IPv4Dynamic = tt.dynamic
		if u, ok := rescueUplink(f); !ok || u.lease != tt.want {
			t.Errorf("%s: rescueUplink = %+v, %v; want lease %v", tt.name, u, ok, tt.want)
		}
	}
}

// A name no Linux interface can have is not taken into ip -batch lines.
func TestRescueUplinkRefusesAnImpossibleNICName(t *testing.T) {
	f := rescueFacts()
	for i := range f.Interfaces {
		f.Interfaces[i].Name = "eth0 scope global\naddr flush dev lo"
	}
	f.Gateway4Interface = f.Interfaces[0].Name
	if u, ok := rescueUplink(f); ok {
		t.Errorf("rescueUplink = %+v, want no uplink", u)
	}
}
