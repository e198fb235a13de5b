package hostnet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Setup is the network a boot brings up on the host's NIC.
type Setup struct {
	V4 netip.Prefix // invalid: no IPv4
	// NoPrefixRoute4 leaves the /24 without its own route, so that only a
	// default route reaches the controller (see KexecNoDefaultRoute).
	NoPrefixRoute4 bool
	GW4            bool // a default route via the fleet's gateway
	// DHCP4: V4 and its default route come from a DHCP exchange with the
	// fleet's server instead (rescue_network: dhcp).
	DHCP4 bool
	// Lease4: V4 is a DHCP lease the simulator hands out itself (a new one
	// after a kexec): added with a lifetime, so it shows dynamic.
	Lease4 bool
	// Extra4 is a second IPv4 address, a DHCP lease beside a static V4.
	Extra4 netip.Prefix
	V6     netip.Prefix // invalid: no IPv6
	// GW6 is the IPv6 default route's gateway, reached by an on-link route;
	// invalid: no IPv6 route beyond the /64.
	GW6 netip.Addr
}

// OVH is OVH's addressing of host i: the /24 with the gateway at .254, the
// /64 with an on-link route to a gateway outside it.
func (p Plan) OVH(i int) Setup {
	return Setup{V4: p.HostV4(i), GW4: true, V6: p.HostV6(i), GW6: p.GW6}
}

// How the installer's network may come up after a kexec (failure mode 2 of
// the field: nixos-images #242, nixos-anywhere #112 and #415).
const (
	// KexecNewDHCPAddress: DHCP hands the installer another address of the
	// /24. It replaces the rescue's address when that was a DHCP lease at
	// the kexec; a static one is kept beside it, as nixos-images restores
	// static addresses and asks DHCP again for leases.
	KexecNewDHCPAddress = "new-dhcp-address"
	// KexecNoDefaultRoute: the installer has its address but no IPv4
	// default route. The controller shares the gateway's address on the
	// fleet's bridge, so the /24 loses its own route too: the controller
	// stays beyond the host's reach, as a controller on the internet is.
	KexecNoDefaultRoute = "no-default-route"
	// KexecNoIPv6: the installer comes up without IPv6.
	KexecNoIPv6 = "no-ipv6"
)

// NewLeaseIndex is where in the /24 the DHCP server's new lease puts host
// i after a kexec (KexecNewDHCPAddress): from the top, below the gateway.
func NewLeaseIndex(i int) int { return 254 - i }

// Kexec is host i's installer network after a kexec, as nixos-images
// restores it: the rescue's static addresses and routes; for an IPv4
// address that was a DHCP lease at the kexec (lease4), a new DHCP request
// (rescueDHCP: to the fleet's server, which answers with the same
// address). The host's faults (KexecNewDHCPAddress, ...) change that. why
// says what a user at the console would find.
func (p Plan) Kexec(i int, lease4, rescueDHCP bool, faults []string) (n Setup, why string) {
	n = p.OVH(i)
	if lease4 {
		n.DHCP4 = rescueDHCP
		n.Lease4 = !n.DHCP4
	}
	var whys []string
	for _, fault := range faults {
		switch fault {
		case KexecNewDHCPAddress:
			lease := p.HostV4(NewLeaseIndex(i))
			if !lease4 {
				n.Extra4 = lease
				break
			}
			n.V4, n.DHCP4, n.Lease4 = lease, false, true
			whys = append(whys, fmt.Sprintf("the installer came up on %s (a new DHCP lease), not on %s", lease.Addr(), p.HostV4(i).Addr()))
		case KexecNoDefaultRoute:
			n.GW4, n.NoPrefixRoute4, n.DHCP4 = false, true, false
			whys = append(whys, "the installer came up without its IPv4 default route")
		case KexecNoIPv6:
			n.V6, n.GW6 = netip.Prefix{}, netip.Addr{}
			whys = append(whys, "the installer came up without IPv6")
		}
	}
	return n, strings.Join(whys, "; ")
}

// DHCPLease is how long the fleet's DHCP server lends an address: longer
// than any rehearsal, since nothing renews it.
const DHCPLease = 864000

// Link is a host's link to the fleet's bridge, in the host's network
// namespace.
type Link struct {
	Host  string // the host's name, for messages
	Netns string
	// Gateway4 is the fleet's IPv4 gateway, a static address's default
	// route.
	Gateway4 netip.Addr
	// DHCPDir holds the fleet's DHCP server's files, udhcpc's script
	// (UDHCPCScript) among them.
	DHCPDir string
}

// Rename takes the link (named cur now) down without its addresses and
// gives it the name this boot calls it (nic).
func (l Link) Rename(ctx context.Context, cur, nic string) error {
	lines := []string{"link set dev lo up", "link set dev " + cur + " down", "addr flush dev " + cur}
	if cur != nic {
		lines = append(lines, "link set dev "+cur+" name "+nic)
	}
	return IP(ctx, l.Netns, lines...)
}

// Configure brings the link (nic) up with the addresses and routes of s.
func (l Link) Configure(ctx context.Context, nic string, s Setup) error {
	lines := []string{"link set dev " + nic + " up"}
	lease := fmt.Sprintf(" valid_lft %d preferred_lft %d", DHCPLease, DHCPLease)
	if s.V4.IsValid() && !s.DHCP4 {
		add := "addr add " + s.V4.String() + " dev " + nic
		if s.NoPrefixRoute4 {
			add += " noprefixroute"
		}
		if s.Lease4 {
			add += lease
		}
		lines = append(lines, add)
		if s.GW4 {
			route := "route add default via " + l.Gateway4.String() + " dev " + nic
			if s.Lease4 {
				route += " proto dhcp"
			}
			lines = append(lines, route)
		}
	}
	if s.Extra4.IsValid() {
		lines = append(lines, "addr add "+s.Extra4.String()+" dev "+nic+lease)
	}
	if s.V6.IsValid() {
		lines = append(lines, "addr add "+s.V6.String()+" dev "+nic+" nodad")
		if s.GW6.IsValid() {
			lines = append(lines,
				"route add "+s.GW6.String()+"/128 dev "+nic,
				"route add default via "+s.GW6.String()+" dev "+nic)
		}
	}
	if err := IP(ctx, l.Netns, lines...); err != nil {
		return err
	}
	if s.DHCP4 {
		return l.askDHCP(ctx, nic)
	}
	return nil
}

// Down takes the link (nic) down without its addresses: the host stopped.
func (l Link) Down(ctx context.Context, nic string) error {
	return IP(ctx, l.Netns, "link set dev "+nic+" down", "addr flush dev "+nic)
}

// askDHCP runs a DHCP exchange for the host's NIC with busybox's udhcpc
// in the host's network namespace, and applies the lease. It asks for 25
// seconds, as a client at boot keeps asking (dhclient for a minute): one
// lost exchange on a loaded machine must not leave the host off the
// network.
func (l Link) askDHCP(ctx context.Context, nic string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+l.Netns, "--",
		"busybox", "udhcpc", "-i", nic, "-f", "-q", "-n", "-t", "25", "-T", "1", "-s", filepath.Join(l.DHCPDir, "udhcpc.script"))
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("DHCP for %s: udhcpc: %w: %s", l.Host, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// IsLease says whether the address v4 on the link (nic) is a DHCP lease
// now (dynamic, with a lifetime), as kexec/run records it in the initrd.
func (l Link) IsLease(ctx context.Context, nic string, v4 netip.Addr) bool {
	out, err := exec.CommandContext(ctx, "ip", "-n", l.Netns, "-j", "-4", "addr", "show", "dev", nic).Output()
	if err != nil {
		return false
	}
	var links []struct {
		AddrInfo []struct {
			Local   string `json:"local"`
			Dynamic bool   `json:"dynamic"`
		} `json:"addr_info"`
	}
	if json.Unmarshal(out, &links) != nil {
		return false
	}
	for _, link := range links {
		for _, a := range link.AddrInfo {
			if a.Local == v4.String() {
				return a.Dynamic
			}
		}
	}
	return false
}
