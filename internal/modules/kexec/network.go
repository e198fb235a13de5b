package kexec

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/transport"
)

// uplink is the rescue's network on the NIC that carries its default route:
// what kexec/run hands the installer, and what the installer must have for
// nixbook to reach it where it reached the rescue.
type uplink struct {
	nic, mac string
	v4, v6   netip.Prefix // invalid: none
	gw4, gw6 netip.Addr   // invalid: none
	// lease is true when v4 is a DHCP lease. Facts gathered without ip(8)
	// cannot tell, and the address is left as it is.
	lease bool
}

// rescueUplink reads the uplink from the rescue's facts; ok is false when
// facts name no interface with an address.
func rescueUplink(f *facts.Facts) (uplink, bool) {
	if f == nil {
		return uplink{}, false
	}
	var iface *facts.Interface
	for i := range f.Interfaces {
		in := &f.Interfaces[i]
		if in.Name == f.Gateway4Interface || iface == nil && len(in.IPv4) > 0 {
			iface = in
		}
	}
	if iface == nil || !ifaceName.MatchString(iface.Name) {
		return uplink{}, false
	}
	u := uplink{nic: iface.Name, mac: iface.MAC, v4: firstPrefix(iface.IPv4, true), v6: firstPrefix(iface.IPv6, false)}
	u.lease = u.v4.IsValid() && slices.Contains(iface.IPv4Dynamic, u.v4.String())
	if f.Gateway4Interface == "" || f.Gateway4Interface == iface.Name {
		u.gw4, _ = netip.ParseAddr(f.Gateway4)
	}
	if f.Gateway6Interface == "" || f.Gateway6Interface == iface.Name {
		u.gw6, _ = netip.ParseAddr(f.Gateway6)
	}
	if !u.v6.IsValid() {
		u.gw6 = netip.Addr{}
	}
	return u, u.v4.IsValid() || u.v6.IsValid()
}

// ifaceName is what Linux accepts as an interface name: the restore's
// `ip -batch` lines take it as one word.
var ifaceName = regexp.MustCompile(`^[^\s/:]{1,15}$`)

func firstPrefix(list []string, v4 bool) netip.Prefix {
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is4() == v4 {
			return p
		}
	}
	return netip.Prefix{}
}

// restore is how the rescue's network is put back in the installer, one
// family at a time, each by one `ip -batch` so that a flush and the adds
// after it happen together, even over a connection on that family.
type restore struct {
	v4, v6 []string // ip -batch lines
}

// batch is the command running lines through ip -batch for family (-4, -6).
func batch(family string) transport.Cmd {
	return transport.Cmd{Args: []string{"ip", family, "-batch", "-"}}
}

// planRestore plans the commands that give the installer the rescue's
// uplink again, in c.
func planRestore(c *modules.Change, u uplink) restore {
	var r restore
	if u.v4.IsValid() {
		r.v4 = []string{"addr flush dev " + u.nic + " scope global", "addr add " + u.v4.String() + " dev " + u.nic}
		if u.gw4.IsValid() {
			r.v4 = append(r.v4, "route replace default via "+u.gw4.String()+" dev "+u.nic+" onlink")
		}
		c.Cmd(batch("-4").Args...)
		c.Summary += "; IPv4: " + strings.Join(r.v4, ", ")
	}
	if u.v6.IsValid() {
		r.v6 = []string{"addr flush dev " + u.nic + " scope global", "addr add " + u.v6.String() + " dev " + u.nic}
		if u.gw6.IsValid() {
			r.v6 = append(r.v6, "route replace "+u.gw6.String()+"/128 dev "+u.nic, "route replace default via "+u.gw6.String()+" dev "+u.nic)
		}
		c.Cmd(batch("-6").Args...)
		c.Summary += "; IPv6: " + strings.Join(r.v6, ", ")
	}
	return r
}

// drift is how the installer's network differs from the rescue's, per
// family; empty strings when it does not.
type drift struct {
	v4, v6 string
}

// compare says how the installer's facts differ from the rescue's uplink.
func compare(u uplink, f *facts.Facts) drift {
	var iface *facts.Interface
	for i := range f.Interfaces {
		in := &f.Interfaces[i]
		if u.mac != "" && strings.EqualFold(in.MAC, u.mac) || iface == nil && in.Name == u.nic {
			iface = in
		}
	}
	var d drift
	has := func(list []string, p netip.Prefix) bool {
		for _, s := range list {
			if q, err := netip.ParsePrefix(s); err == nil && q == p {
				return true
			}
		}
		return false
	}
	var v4s, v6s []string
	if iface != nil {
		v4s, v6s = iface.IPv4, iface.IPv6
	}
	switch {
	case !u.v4.IsValid():
	case !has(v4s, u.v4) && len(v4s) > 0:
		d.v4 = fmt.Sprintf("came up on %s (a new DHCP lease?) instead of the rescue's %s", strings.Join(v4s, ", "), u.v4)
	case !has(v4s, u.v4):
		d.v4 = fmt.Sprintf("came up without the rescue's IPv4 address %s", u.v4)
	case u.gw4.IsValid() && f.Gateway4 != u.gw4.String():
		d.v4 = fmt.Sprintf("came up without the IPv4 default route via %s", u.gw4)
	}
	switch {
	case !u.v6.IsValid():
	case !has(v6s, u.v6):
		d.v6 = fmt.Sprintf("came up without the rescue's IPv6 address %s", u.v6)
	case u.gw6.IsValid() && f.Gateway6 != u.gw6.String():
		d.v6 = fmt.Sprintf("came up without the IPv6 default route via %s", u.gw6)
	}
	return d
}

// elsewhere are the rescue's addresses other than dial, where the installer
// may answer when its network came up otherwise on dial's family.
func (p *plan) elsewhere(dial string) []string {
	if !p.uplinkOK {
		return nil
	}
	var out []string
	for _, a := range []netip.Prefix{p.uplink.v4, p.uplink.v6} {
		if a.IsValid() && a.Addr().String() != dial {
			out = append(out, a.Addr().String())
		}
	}
	return out
}

// restoreAttempt bounds the reconnection at the host's own address once
// its network is restored.
const restoreAttempt = time.Minute

// restoreNetwork compares the installer's network with the rescue's and
// puts back, family by family, what came up otherwise; answeredAt is where
// the installer answered when not at its own address. It says what it
// restored, "" when nothing needed it.
func (m *module) restoreNetwork(ctx context.Context, h modules.Host, p *plan, answeredAt string) (string, error) {
	d := compare(p.uplink, h.Facts())
	var what []string
	for _, fam := range []struct {
		flag, drift string
		lines       []string
	}{{"-4", d.v4, p.restore.v4}, {"-6", d.v6, p.restore.v6}} {
		if fam.drift == "" {
			continue
		}
		msg := "the installer " + fam.drift
		h.Log("%s (its network came up otherwise than the rescue's, as after some kexecs); restoring the rescue's: %s", msg, strings.Join(fam.lines, "; "))
		cmd := batch(fam.flag)
		cmd.Stdin = strings.NewReader(strings.Join(fam.lines, "\n") + "\n")
		if _, err := h.Run(ctx, cmd); err != nil {
			return "", fmt.Errorf("%s, and restoring the rescue's network (%s) failed: %w; on the server's console (KVM/IPMI) run `ip %s addr add ... dev %s` and the routes yourself, then run again",
				msg, strings.Join(fam.lines, "; "), err, fam.flag, p.uplink.nic)
		}
		what = append(what, fam.drift)
	}
	if answeredAt != "" {
		h.Log("the installer answered at %s, not at %s: reconnecting at %s", answeredAt, h.Reach().Dial, h.Reach().Dial)
		rctx, cancel := context.WithTimeout(ctx, restoreAttempt)
		err := h.Reconnect(rctx, transport.DialOptions{})
		cancel()
		if err != nil {
			found := "its addresses and routes are the rescue's"
			if len(what) > 0 {
				found = "it " + strings.Join(what, "; ") + ", and was given the rescue's network again"
			}
			// Not wrapped: the kexec failed, which a block's rescue may take
			// over; the host is not unreachable (it answered elsewhere).
			return "", fmt.Errorf("the installer answered at %s but not at %s (%s): %v; set the host's address in the inventory to %s and run again",
				answeredAt, h.Reach().Dial, found, err, answeredAt)
		}
	}
	if len(what) == 0 {
		return "", nil
	}
	if err := h.RefreshFacts(ctx); err != nil {
		return "", fmt.Errorf("gather facts in the installer: %w", err)
	}
	if left := compare(p.uplink, h.Facts()); left.v4 != "" || left.v6 != "" {
		return "", fmt.Errorf("the installer's network still differs from the rescue's after restoring it: %s", strings.TrimPrefix(strings.Join([]string{left.v4, left.v6}, "; "), "; "))
	}
	h.Log("the installer's network is the rescue's again")
	return strings.Join(what, "; "), nil
}

// planPin plans making the uplink's lease, and its default route, static:
// ip -batch lines, run together by one exec.
func planPin(c *modules.Change, u uplink) []string {
	lines := []string{"addr change " + u.v4.String() + " dev " + u.nic + " valid_lft forever preferred_lft forever"}
	if u.gw4.IsValid() {
		lines = append(lines, "route replace default via "+u.gw4.String()+" dev "+u.nic+" proto static")
	}
	c.Cmd(batch("-4").Args...)
	c.Summary += "; IPv4: " + strings.Join(lines, ", ")
	return lines
}
