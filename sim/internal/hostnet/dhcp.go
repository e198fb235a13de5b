package hostnet

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// UDHCPCScript applies a lease as dhclient would: the address with the
// lease's lifetime (so `ip addr` shows it dynamic), the default route with
// proto dhcp.
const UDHCPCScript = `#!/bin/sh
# nixbook-sim: applies the lease busybox udhcpc obtained, as dhclient would.
case "$1" in
bound|renew)
    ip -4 addr add "$ip/$mask" dev "$interface" valid_lft "$lease" preferred_lft "$lease"
    for r in $router; do
        ip -4 route replace default via "$r" dev "$interface" proto dhcp
        break
    done
    ;;
esac
exit 0
`

// StaticLease is the address the fleet's DHCP server keeps for a host's
// MAC: its own.
type StaticLease struct {
	MAC  string
	Host int // its index in the fleet, 1 first
}

// UDHCPDConf is the configuration of the fleet's DHCP server, busybox's
// udhcpd on the bridge, keeping its files in dir: each host of leases its
// own address, the gateway at .254 as router, OVH's resolver.
func (p Plan) UDHCPDConf(dir string, leases []StaticLease) string {
	var lines []string
	for _, l := range leases {
		lines = append(lines, fmt.Sprintf("static_lease %s %s", l.MAC, p.HostV4(l.Host).Addr()))
	}
	return fmt.Sprintf(`start %s
end %s
interface %s
lease_file %s
pidfile %s
option subnet %s
option router %s
option dns 213.186.33.99
option lease %d
%s
`, p.HostV4(1).Addr(), p.HostV4(MaxHosts).Addr(), p.Bridge, filepath.Join(dir, "udhcpd.leases"), filepath.Join(dir, "udhcpd.pid"),
		netipMask(p.Subnet), p.GW4, DHCPLease, strings.Join(lines, "\n"))
}

func netipMask(p netip.Prefix) string {
	m := ^uint32(0) << (32 - p.Bits())
	return fmt.Sprintf("%d.%d.%d.%d", byte(m>>24), byte(m>>16), byte(m>>8), byte(m))
}
