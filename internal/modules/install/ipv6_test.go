package install

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/transport"
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

// TestVerifyIPv6 follows the check through a machine that answers at its
// IPv6 address or not: the login there is a connection of its own, and
// the host's connection (Reconnect) is never touched, whatever it finds.
func TestVerifyIPv6(t *testing.T) {
	const v6 = "2001:db8:1:2::10"
	routed := func(string) error { return nil }
	tests := []struct {
		name     string
		answers  bool // the machine answers SSH at v6
		routes   func(string) error
		facts    func(f *facts.Facts)
		want     string // "" passes; else a substring of the error
		wantLog  string
		wantDial bool // a login was tried at v6
	}{
		{name: "answers", answers: true, routes: routed, wantLog: "IPv6 works: ks1 answers at " + v6, wantDial: true},
		{name: "does not answer", routes: routed, want: "SSH at " + v6 + " did not answer within 30s", wantDial: true},
		{name: "no route from here", routes: func(string) error { return errors.New("network is unreachable") },
			wantLog: "checked on the host only: this controller has no IPv6 route to " + v6},
		{name: "facts show it broken", answers: true, routes: routed, facts: func(f *facts.Facts) { f.Gateway6 = "" },
			want: "it has no IPv6 default route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine(installedNixOS)
			if tt.answers {
				m.OtherAddresses = []string{v6}
			}
			f := installerFacts()
			if tt.facts != nil {
				tt.facts(f)
			}
			m.SetFacts(f)
			e, _ := expectIPv6(nil, nil, installerFacts())
			err := verifyIPv6(context.Background(), m, e, tt.routes)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("verifyIPv6 = %v, want %q", err, tt.want)
			}
			if tt.wantLog != "" && !strings.Contains(m.AllLogs(), tt.wantLog) {
				t.Errorf("log %q, want a line saying %q", m.AllLogs(), tt.wantLog)
			}
			if d := m.Dials(); len(d) != 0 {
				t.Errorf("the host's connection was dialed again: %+v", d)
			}
			want := []transport.DialOptions(nil)
			if tt.wantDial {
				want = []transport.DialOptions{{Address: v6}}
			}
			if got := m.ProbeDials(); !reflect.DeepEqual(got, want) {
				t.Errorf("logins %+v, want %+v", got, want)
			}
		})
	}
}
