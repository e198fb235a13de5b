package tmpl

import (
	"reflect"
	"strings"
	"testing"
)

// The expectations are those of ansible.utils' ipaddr with netaddr.
func TestIPAddrFilters(t *testing.T) {
	e := New()
	tests := []struct {
		expr string
		want any
	}{
		{"'192.168.1.5' | ipaddr", "192.168.1.5"},
		{"'192.168.1.5/24' | ipaddr", "192.168.1.5/24"},
		{"'not an ip' | ipaddr", false},
		{"'' | ipaddr", false},
		{"'192.168.1.5/33' | ipaddr", false},
		{"'fe80::1%eth0' | ipaddr", false},
		{"'192.168.1.5/24' | ipaddr('address')", "192.168.1.5"},
		{"'192.168.1.0/24' | ipaddr('address')", nil},
		{"'192.168.1.0/31' | ipaddr('address')", "192.168.1.0"},
		{"'2001:db8::/64' | ipaddr('address')", "2001:db8::"},
		{"'192.168.1.5/24' | ipaddr('network')", "192.168.1.0"},
		{"'192.168.1.5/24' | ipaddr('prefix')", 24},
		{"'192.168.1.5/24' | ipaddr('netmask')", "255.255.255.0"},
		{"'192.168.1.5/255.255.255.0' | ipaddr('prefix')", 24},
		{"'192.168.1.5/24' | ipaddr('hostmask')", "0.0.0.255"},
		{"'2001:db8::1/64' | ipaddr('netmask')", "ffff:ffff:ffff:ffff::"},
		{"'192.168.1.5/24' | ipaddr('host')", "192.168.1.5/24"},
		{"'192.168.1.0/24' | ipaddr('host')", nil},
		{"'192.168.1.5' | ipaddr('host')", "192.168.1.5/32"},
		{"'192.168.1.5/24' | ipaddr('broadcast')", "192.168.1.255"},
		{"'192.168.1.5/24' | ipaddr('subnet')", "192.168.1.0/24"},
		{"'192.168.1.0/24' | ipaddr('net')", "192.168.1.0/24"},
		{"'192.168.1.5/24' | ipaddr('net')", nil},
		{"'192.168.1.5/24' | ipaddr('size')", 256},
		{"'192.168.1.0/24' | ipaddr('type')", "network"},
		{"'2001:db8::1' | ipaddr('version')", 6},
		{"'192.168.1.0/24' | ipaddr(1)", "192.168.1.1/24"},
		{"'192.168.1.0/24' | ipaddr('10')", "192.168.1.10/24"},
		{"'192.168.1.0/24' | ipaddr(-2)", "192.168.1.254/24"},
		{"'192.168.1.0/24' | ipaddr(256)", false},
		{"'2001:db8::/64' | ipaddr(5)", "2001:db8::5/64"},
		{"'10.1.2.3' | ipaddr(7)", "10.1.2.3"},
		{"3232235777 | ipaddr", "192.168.1.1"},
		{"['10.0.0.1', 'x', '2001:db8::1', '10.0.0.0/8'] | ipaddr", []any{"10.0.0.1", "2001:db8::1", "10.0.0.0/8"}},
		{"['10.0.0.1', '2001:db8::1'] | ipv4", []any{"10.0.0.1"}},
		{"['10.0.0.1', '2001:db8::1'] | ipv6", []any{"2001:db8::1"}},
		{"'10.0.0.1/8' | ipv4('address')", "10.0.0.1"},
		{"'10.0.0.1' | ipv6", false},
		{"['10.1.2.3', '192.168.0.1', '10.0.0.0/16'] | ipaddr('10.0.0.0/8')", []any{"10.1.2.3", "10.0.0.0/16"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := e.Eval(tt.expr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Eval(%q) = %#v, want %#v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestIPAddrFilterErrors(t *testing.T) {
	_, err := New().Eval("'10.0.0.1' | ipv4('nonsense')", nil)
	if err == nil || !strings.Contains(err.Error(), "ipv4: unknown filter type: nonsense") {
		t.Errorf("error = %v, want an unknown filter type", err)
	}
}
