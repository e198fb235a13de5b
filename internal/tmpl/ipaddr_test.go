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
		{"'192.168.1.5/24' | ipaddr('host/prefix')", "192.168.1.5/24"},
		{"'192.168.1.0/24' | ipaddr('host/prefix')", false},
		{"'192.168.1.255/24' | ipaddr('address/prefix')", false},
		{"'10.0.0.1/31' | ipaddr('gateway')", "10.0.0.1/31"},
		{"'192.168.1.5/24' | ipaddr('ip_netmask')", "192.168.1.5 255.255.255.0"},
		{"'192.168.1.0/24' | ipaddr('ip/prefix')", nil},
		{"'192.168.1.5/24' | ipaddr('network_wildcard')", "192.168.1.0 0.0.0.255"},
		{"'192.168.1.0/24' | ipaddr('first_usable')", "192.168.1.1"},
		{"'192.168.1.0/24' | ipaddr('last_usable')", "192.168.1.254"},
		{"'192.168.1.0/31' | ipaddr('last_usable')", "192.168.1.1"},
		{"'192.168.1.5/24' | ipaddr('next_usable')", "192.168.1.6"},
		{"'192.168.1.254/24' | ipaddr('next_usable')", nil},
		{"'192.168.1.5/24' | ipaddr('previous_usable')", "192.168.1.4"},
		{"'192.168.1.0/24' | ipaddr('range_usable')", "192.168.1.1-192.168.1.254"},
		{"'2001:db8::/64' | ipaddr('last_usable')", "2001:db8::ffff:ffff:ffff:fffe"},
		{"'192.168.1.0/24' | ipaddr('size_usable')", 254},
		{"'10.0.0.1/31' | ipaddr('peer')", "10.0.0.0"},
		{"'10.0.0.1/30' | ipaddr('peer')", "10.0.0.2"},
		{"'192.168.1.1' | ipaddr('int')", 3232235777},
		{"'192.168.1.0/24' | ipaddr('int')", "3232235776/24"},
		{"'192.168.1.5' | ipaddr('revdns')", "5.1.168.192.in-addr.arpa."},
		{"'2001:db8::1' | ipaddr('revdns')", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."},
		{"'2001:db8::1' | ipaddr('wrap')", "[2001:db8::1]"},
		{"'2001:db8::1/64' | ipaddr('wrap')", "[2001:db8::1]/64"},
		{"'10.0.0.1' | ipaddr('wrap')", "10.0.0.1"},
		{"'192.168.1.5/24' | ipaddr('ipv6')", "::ffff:192.168.1.5/120"},
		{"'192.168.1.5/24' | ipv4('ipv4')", "192.168.1.5/24"},
		{"'2001:db8::1' | ipaddr('ipv4')", false},
		{"'8.8.8.8' | ipaddr('public')", "8.8.8.8"},
		{"'10.0.0.1' | ipaddr('public')", nil},
		{"'10.0.0.1' | ipaddr('private')", "10.0.0.1"},
		{"'8.8.8.8' | ipaddr('private')", nil},
		{"['8.8.8.8', '10.1.1.1', '127.0.0.1', '2001:db8::1', '2a01:4f8::1', '224.0.0.1'] | ipaddr('public')", []any{"8.8.8.8", "2a01:4f8::1"}},
		{"'127.0.0.1' | ipaddr('loopback')", "127.0.0.1"},
		{"'fe80::1' | ipaddr('link-local')", "fe80::1"},
		{"'169.254.3.4' | ipaddr('link-local')", "169.254.3.4"},
		{"['224.0.0.1', '10.0.0.1'] | ipaddr('multicast')", []any{"224.0.0.1"}},
		{"['224.0.0.1', '10.0.0.1'] | ipaddr('unicast')", []any{"10.0.0.1"}},
		{"'192.168.1.0/24' | nthhost(10)", "192.168.1.10"},
		{"'192.168.1.77/24' | nthhost(-1)", "192.168.1.255"},
		{"'192.168.1.0/24' | nthhost(0)", false}, // Python: "if not query"
		{"'192.168.1.0/24' | nthhost(300)", false},
		{"'2001:db8::/64' | nthhost(5)", "2001:db8::5"},
		{"'nonsense' | nthhost(5)", false},
		{"'192.168.1.5' | ipmath(3)", "192.168.1.8"},
		{"'192.168.1.5/24' | ipmath(-10)", "192.168.0.251"},
		{"'2001:db8::1' | ipmath(16)", "2001:db8::11"},
		{"'192.168.122.1/24' | next_nth_usable(2)", "192.168.122.3"},
		{"'192.168.122.1/24' | previous_nth_usable(1)", nil},
		{"'192.168.122.10/24' | previous_nth_usable(2)", "192.168.122.8"},
		{"'192.168.0.0/24' | network_in_usable('192.168.0.1')", true},
		{"'192.168.0.0/24' | network_in_usable('192.168.0.0/16')", false},
		{"'192.168.0.0/24' | network_in_network('192.168.0.128/25')", true},
		{"'192.168.0.0/24' | network_in_network('10.0.0.1')", false},
		{"['2001:db8::1', '10.0.0.1', 'x'] | ipwrap", []any{"[2001:db8::1]", "10.0.0.1", "x"}},
		{"'192.168.144.5' | ipsubnet", "192.168.144.5/32"},
		{"'192.168.0.0/16' | ipsubnet", "192.168.0.0/16"},
		{"'192.168.0.0/16' | ipsubnet(20)", "16"},
		{"'192.168.0.0/16' | ipsubnet(20, 0)", "192.168.0.0/20"},
		{"'192.168.0.0/16' | ipsubnet(20, -1)", "192.168.240.0/20"},
		{"'192.168.0.0/16' | ipsubnet(20, 16)", false},
		{"'192.168.0.0/16' | ipsubnet(8)", "0"},
		{"'192.168.144.5' | ipsubnet(20)", "192.168.144.0/20"},
		{"'192.168.144.5' | ipsubnet(18, 0)", "192.168.128.0/18"},
		{"'192.168.144.5' | ipsubnet(18, -1)", "192.168.144.4/31"},
		{"'192.168.144.5' | ipsubnet(18, 5)", "192.168.144.0/23"},
		{"'2001:41d0:1:2a00::/56' | ipsubnet(64, 3)", "2001:41d0:1:2a03::/64"},
		{"'2001:41d0:1:2a00::/56' | ipsubnet(64)", "256"},
		{"'192.168.144.16/30' | ipsubnet('192.168.144.0/24')", "5"},
		{"'192.168.144.5' | ipsubnet('192.168.144.0/24')", "6"},
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
	tests := []struct{ expr, want string }{
		{"'10.0.0.1' | ipv4('nonsense')", "ipv4: unknown filter type: nonsense"},
		{"'192.168.1.5' | ipaddr('first_usable')", "ipaddr: Not a network address"},
		{"'10.0.0.0/30' | ipaddr('peer')", "ipaddr: Network address of /30 has no peer"},
		{"'10.0.0.0/24' | ipaddr('peer')", "ipaddr: Not a point-to-point network"},
		{"'x' | ipmath(1)", "ipmath: you must pass a valid IP address; x is invalid"},
		{"'10.0.0.1' | ipmath('a')", "ipmath: you must pass an integer"},
		{"'255.255.255.255' | ipmath(1)", "ipmath: 255.255.255.255+1 is out of the IPv4 address space"},
		{"'10.0.0.1/24' | next_nth_usable('a')", "next_nth_usable: must pass in an integer"},
		{"'10.0.0.0/24' | ipsubnet('10.1.0.0/16')", "ipsubnet: 10.0.0.0/24 is not in the subnet 10.1.0.0/16"},
		{"'10.0.0.0/24' | ipsubnet('x')", "ipsubnet: you must pass a valid subnet or IP address; x is invalid"},
	}
	for _, tt := range tests {
		_, err := New().Eval(tt.expr, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Eval(%q) error = %v, want %q", tt.expr, err, tt.want)
		}
	}
}
