package install

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/transport"
)

// ipv6Expect is the IPv6 the installed system must answer on: the
// inventory's ipv6 and ipv6_gateway (what nixos_config wrote), else what the
// system it was installed from had. A broken IPv6 does not stop SSH over
// IPv4, so only a look at IPv6 itself finds it.
type ipv6Expect struct {
	addr netip.Prefix
	gw   netip.Addr // invalid: not known
}

// expectIPv6 reads what the installed system's IPv6 must be, from the
// inventory's ipv6 and ipv6_gateway and the facts of the system it was
// installed from; ok is false when the host has none (or the inventory
// says ipv6: none).
func expectIPv6(ipv6, gateway any, before *facts.Facts) (ipv6Expect, bool) {
	var e ipv6Expect
	str := func(v any) string { s, _ := v.(string); return strings.TrimSpace(s) }
	switch v := str(ipv6); {
	case strings.EqualFold(v, "none"):
		return e, false
	case v != "":
		p, err := netip.ParsePrefix(v)
		if err != nil || !p.Addr().Is6() {
			return e, false // nixos_config refuses it; nothing to check here
		}
		e.addr = p
	case before != nil:
		for _, in := range before.Interfaces {
			for _, s := range in.IPv6 {
				if p, err := netip.ParsePrefix(s); err == nil && !e.addr.IsValid() && (before.Gateway6Interface == "" || before.Gateway6Interface == in.Name) {
					e.addr = p
				}
			}
		}
	}
	if !e.addr.IsValid() {
		return e, false
	}
	if gw, err := netip.ParseAddr(str(gateway)); err == nil {
		e.gw = gw
	} else if before != nil {
		e.gw, _ = netip.ParseAddr(before.Gateway6)
	}
	return e, true
}

// ipv6Problems says what the installed system's facts show wrong with its
// IPv6: its address missing, its default route missing or through another
// gateway.
func ipv6Problems(e ipv6Expect, f *facts.Facts) []string {
	var have []string
	found := false
	for _, in := range f.Interfaces {
		for _, s := range in.IPv6 {
			have = append(have, s+" on "+in.Name)
			if p, err := netip.ParsePrefix(s); err == nil && p.Addr() == e.addr.Addr() {
				found = true
			}
		}
	}
	var out []string
	switch {
	case !found && len(have) == 0:
		out = append(out, fmt.Sprintf("it has no IPv6 address (want %s)", e.addr))
	case !found:
		out = append(out, fmt.Sprintf("it has IPv6 %s, not %s", strings.Join(have, ", "), e.addr))
	}
	switch {
	case f.Gateway6 == "" && e.gw.IsValid():
		out = append(out, fmt.Sprintf("it has no IPv6 default route (want one via %s)", e.gw))
	case f.Gateway6 == "":
		out = append(out, "it has no IPv6 default route")
	case e.gw.IsValid() && f.Gateway6 != e.gw.String():
		out = append(out, fmt.Sprintf("its IPv6 default route goes via %s, not the server's gateway %s", f.Gateway6, e.gw))
	}
	return out
}

// ipv6DialTimeout bounds the logins at the installed system's IPv6
// address: it may come up a little after IPv4 (duplicate address
// detection).
const ipv6DialTimeout = 30 * time.Second

// verifyIPv6 checks that the installed system answers over IPv6 as well:
// what its facts say, then an SSH login at its IPv6 address on a connection
// of its own, unless routes (nil: controllerRoutes) says this controller
// has no IPv6 route to it. The host's connection is left as it is.
func verifyIPv6(ctx context.Context, h modules.Host, e ipv6Expect, routes func(addr string) error) error {
	if routes == nil {
		routes = controllerRoutes
	}
	problems := ipv6Problems(e, h.Facts())
	addr := e.addr.Addr().String()
	if len(problems) == 0 {
		if err := routes(addr); err != nil {
			h.Log("IPv6 of the installed system checked on the host only: this controller has no IPv6 route to %s (%v)", addr, err)
		} else {
			dctx, cancel := context.WithTimeout(ctx, ipv6DialTimeout)
			err := h.ProbeDial(dctx, transport.DialOptions{Address: addr})
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				problems = append(problems, fmt.Sprintf("SSH at %s did not answer within %s (%v)", addr, ipv6DialTimeout, err))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the installed system answers over IPv4 but its IPv6 does not work: %s. Fix ipv6 and ipv6_gateway in the inventory (on OVH the gateway is the /56's ff:ff:ff:ff:ff, outside the /64) or networking.interfaces and networking.defaultGateway6 in /etc/nixos, then run nixos-rebuild switch on the host or reinstall",
			strings.Join(problems, "; "))
	}
	h.Log("IPv6 works: %s answers at %s", h.Name(), addr)
	return nil
}

// controllerRoutes says whether this machine has a route to addr, without
// sending anything (a UDP socket's connect only looks the route up).
func controllerRoutes(addr string) error {
	c, err := net.Dial("udp", net.JoinHostPort(addr, "22"))
	if err != nil {
		return err
	}
	return c.Close()
}
