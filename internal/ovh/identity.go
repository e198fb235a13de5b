package ovh

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Server states (dedicated.server.StateEnum). Only StateOK may be driven.
const (
	StateOK            = "ok"
	StateInError       = "error"
	StateHacked        = "hacked"
	StateHackedBlocked = "hackedBlocked"
)

// Claim is what the inventory says of a host that nixbook is about to drive
// through the API as the service: where nixbook reaches the host, and where
// the inventory defines it (for messages).
type Claim struct {
	Host    string // inventory name
	Source  string // file:line of the host in the inventory; may be empty
	Dial    string // the name or address nixbook dials, after ~/.ssh/config
	Service string
	// MonitoringOff: the inventory asks that OVH's monitoring be off while
	// nixbook reinstalls the server (VarMonitoring).
	MonitoringOff bool
	// EFIBootloaderPath is the loader a UEFI server boots from its disk
	// (see EFIPath); "" for a BIOS server.
	EFIBootloaderPath string
}

// IdentityError is a service that is not provably the host the inventory
// means: none of the addresses OVH knows for it is one nixbook dials.
type IdentityError struct {
	Claim
	Dialed   []netip.Addr // what Dial resolves to
	ServerIP string       // the service's main address, as OVH gives it
	Blocks   []string     // the service's IP blocks, when they were read
}

func (e *IdentityError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: refusing to drive OVH service %s: it is not this host", e.Host, e.Service)
	fmt.Fprintf(&b, " (nixbook dials %s", e.Dial)
	if len(e.Dialed) > 0 && !(len(e.Dialed) == 1 && e.Dialed[0].String() == e.Dial) {
		fmt.Fprintf(&b, " = %s", joinAddrs(e.Dialed))
	}
	fmt.Fprintf(&b, "; OVH gives %s the address %s", e.Service, e.ServerIP)
	if len(e.Blocks) > 0 {
		fmt.Fprintf(&b, " and the blocks %s", strings.Join(e.Blocks, ", "))
	}
	b.WriteString(")")
	if e.Source != "" {
		fmt.Fprintf(&b, "; check %s or the host's address at %s", VarService, e.Source)
	} else {
		fmt.Fprintf(&b, "; check %s or the host's address", VarService)
	}
	return b.String()
}

// StateError is a server OVH does not let be driven as usual: its state is
// hacked, hackedBlocked or error.
type StateError struct {
	Host, Service, State string
}

func (e *StateError) Error() string {
	why := "OVH reports a problem with it"
	switch e.State {
	case StateHacked, StateHackedBlocked:
		why = "OVH flagged it as compromised; deal with OVH's incident first"
	case StateInError:
		why = "OVH reports it in error; see the OVH manager"
	}
	return fmt.Sprintf("%s: refusing to drive OVH service %s: its state is %q, not %q (%s)", e.Host, e.Service, e.State, StateOK, why)
}

// LookupFunc resolves a host name; net.DefaultResolver.LookupNetIP
// in production.
type LookupFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

// Verify proves that c.Service is the server the inventory means before
// anything is written through the API: its state must be ok, and one of the
// addresses OVH knows for it (its main IP, else its IP blocks) must be an
// address nixbook dials. Identity comes first: the state of another server
// says nothing of this one. It returns the server as read.
func (c *Client) Verify(ctx context.Context, claim Claim, lookup LookupFunc) (*Server, error) {
	srv, err := c.GetServer(ctx, claim.Service)
	if err != nil {
		return nil, err
	}
	dialed, err := dialAddrs(ctx, claim.Dial, lookup)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot prove that OVH service %s is this host: %w", claim.Host, claim.Service, err)
	}
	if main, err := netip.ParseAddr(srv.IP); err == nil && slices.Contains(dialed, main.Unmap()) {
		return checkState(claim, srv)
	}
	// A host reached on an additional address (IPv6, a failover IP routed
	// to it): its blocks say whether the address is the server's.
	blocks, err := c.IPs(ctx, claim.Service)
	if err != nil {
		return nil, err
	}
	for _, text := range blocks {
		p, err := netip.ParsePrefix(text)
		if err != nil {
			continue
		}
		for _, a := range dialed {
			if p.Contains(a) {
				return checkState(claim, srv)
			}
		}
	}
	return nil, &IdentityError{Claim: claim, Dialed: dialed, ServerIP: srv.IP, Blocks: blocks}
}

// checkState refuses a server OVH does not consider ok, once it is known to
// be the host: its state then is this host's.
func checkState(claim Claim, srv *Server) (*Server, error) {
	if srv.State != "" && srv.State != StateOK {
		return nil, &StateError{Host: claim.Host, Service: claim.Service, State: srv.State}
	}
	return srv, nil
}

func dialAddrs(ctx context.Context, host string, lookup LookupFunc) ([]netip.Addr, error) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	if host == "" {
		return nil, fmt.Errorf("the host has no address")
	}
	if lookup == nil {
		lookup = net.DefaultResolver.LookupNetIP
	}
	addrs, err := lookup(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%s resolves to no address", host)
	}
	out := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		out[i] = a.Unmap()
	}
	return out, nil
}

func joinAddrs(addrs []netip.Addr) string {
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}
