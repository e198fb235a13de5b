// Network facts: interfaces from sysfs and ip, routes from ip or
// /proc/net/route, IPv6 from /proc/net/if_inet6.

package facts

import (
	"encoding/hex"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
)

func parseNetwork(f *Facts, secs []section, get func(string) *section) {
	var ifaces []*Interface
	byName := map[string]*Interface{}
	iface := func(name string) *Interface {
		if i, ok := byName[name]; ok {
			return i
		}
		i := &Interface{Name: name}
		byName[name] = i
		ifaces = append(ifaces, i)
		return i
	}
	for _, s := range secs {
		if s.name != "iface" || s.arg == "" {
			continue
		}
		parseIfaceSection(iface(s.arg), s.lines)
	}

	if s := get("ip-addr"); s != nil {
		for _, line := range s.lines {
			name, addr, dynamic, ok := parseIPAddrLine(line)
			if !ok {
				continue
			}
			i := iface(name)
			addAddr(i, addr)
			if dynamic && addr.Addr().Is4() && !slices.Contains(i.IPv4Dynamic, addr.String()) {
				i.IPv4Dynamic = append(i.IPv4Dynamic, addr.String())
			}
		}
	}
	if s := get("ip-route4"); s != nil {
		f.Gateway4, f.Gateway4Interface = parseIPRouteDefault(s.lines)
	}
	if s := get("ip-route6"); s != nil {
		f.Gateway6, f.Gateway6Interface = parseIPRouteDefault(s.lines)
	}

	// Fallbacks for hosts without ip(8).
	var routes []procRoute
	if s := get("proc-net-route"); s != nil {
		routes = parseProcNetRoute(s.lines)
		f.Gateway4, f.Gateway4Interface = defaultRoute4(routes)
	}
	if s := get("proc-fib-trie"); s != nil {
		for _, a := range localAddrs4(s.lines) {
			if name, p, ok := connectedPrefix(routes, a); ok {
				addAddr(iface(name), netip.PrefixFrom(a, p.Bits()))
			}
		}
	}
	if s := get("proc-if-inet6"); s != nil {
		for _, line := range s.lines {
			if name, p, ok := parseIfInet6Line(line); ok {
				addAddr(iface(name), p)
			}
		}
	}
	if s := get("proc-ipv6-route"); s != nil {
		f.Gateway6, f.Gateway6Interface = defaultRoute6(s.lines)
	}

	for _, i := range ifaces {
		if i.Name == "lo" {
			continue
		}
		f.Interfaces = append(f.Interfaces, *i)
	}
}

func parseIfaceSection(i *Interface, lines []string) {
	var operstate string
	var flags uint64
	for _, line := range lines {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "address":
			i.MAC = strings.ToLower(v)
		case "operstate":
			operstate = v
		case "flags":
			flags, _ = strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
		case "driver":
			i.Driver = path.Base(v)
		case "ID_NET_NAME_ONBOARD":
			i.NetNames.Onboard = v
		case "ID_NET_NAME_SLOT":
			i.NetNames.Slot = v
		case "ID_NET_NAME_PATH":
			i.NetNames.Path = v
		case "ID_NET_NAME_MAC":
			i.NetNames.MAC = v
		}
	}
	const iffUp = 0x1
	// Some drivers (tun, dummy, veth without a peer state) report "unknown";
	// then the administrative flag decides.
	i.Up = operstate == "up" || (operstate == "unknown" && flags&iffUp != 0)
	// systemd's default NamePolicy: onboard, then slot, then path.
	for _, n := range []string{i.NetNames.Onboard, i.NetNames.Slot, i.NetNames.Path} {
		if n != "" {
			i.PredictedName = n
			break
		}
	}
}

// parseIPAddrLine reads one line of `ip -o addr show`:
//
//	4: eth0    inet 203.0.113.10/24 brd 203.0.113.255 scope global eth0\ ...
//
// It returns IPv4 addresses except host-scope ones and IPv6 global ones,
// and whether the address is dynamic (a DHCP lease, or SLAAC for IPv6).
func parseIPAddrLine(line string) (name string, p netip.Prefix, dynamic, ok bool) {
	fields := strings.Fields(line)
	if len(fields) < 4 {
		return "", netip.Prefix{}, false, false
	}
	name = strings.TrimSuffix(fields[1], ":")
	name, _, _ = strings.Cut(name, "@")
	family := fields[2]
	if family != "inet" && family != "inet6" {
		return "", netip.Prefix{}, false, false
	}
	scope := ""
	// The flags come before the label, which -o ends with a backslash,
	// and the lifetimes after it.
	for j := 4; j < len(fields) && !strings.Contains(fields[j], `\`) && fields[j] != "valid_lft"; j++ {
		switch {
		case fields[j] == "scope" && j+1 < len(fields) && scope == "":
			scope = fields[j+1]
		case fields[j] == "dynamic":
			dynamic = true
		}
	}
	if family == "inet6" && scope != "global" || family == "inet" && scope == "host" {
		return "", netip.Prefix{}, false, false
	}
	p, ok = parsePrefix(fields[3])
	return name, p, dynamic, ok
}

func parsePrefix(s string) (netip.Prefix, bool) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	p, err := netip.ParsePrefix(s)
	return p, err == nil
}

func addAddr(i *Interface, p netip.Prefix) {
	s := p.String()
	if p.Addr().Is4() {
		if !slices.Contains(i.IPv4, s) {
			i.IPv4 = append(i.IPv4, s)
		}
		return
	}
	if !slices.Contains(i.IPv6, s) {
		i.IPv6 = append(i.IPv6, s)
	}
}

// parseIPRouteDefault reads `ip route show default` and returns the first
// default route's gateway and device. A multipath route lists its next hops
// on the following lines.
func parseIPRouteDefault(lines []string) (gateway, dev string) {
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if fields[0] != "default" && fields[0] != "nexthop" {
			if dev != "" || gateway != "" {
				break
			}
			continue
		}
		for j := 0; j+1 < len(fields); j++ {
			switch fields[j] {
			case "via":
				if gateway == "" {
					gateway = fields[j+1]
					// "via inet6 ADDR": a next hop of the other family
					if (gateway == "inet" || gateway == "inet6") && j+2 < len(fields) {
						gateway = fields[j+2]
					}
				}
			case "dev":
				if dev == "" {
					dev = fields[j+1]
				}
			}
		}
		if gateway != "" && dev != "" {
			return gateway, dev
		}
	}
	return gateway, dev
}

type procRoute struct {
	dev       string
	dest      netip.Prefix
	gateway   netip.Addr
	isGateway bool
	metric    uint64
}

// parseProcNetRoute reads /proc/net/route, whose addresses are hex in host
// (little-endian on every platform nixbook targets) byte order.
func parseProcNetRoute(lines []string) []procRoute {
	const rtfUp, rtfGateway = 0x1, 0x2
	var rs []procRoute
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) < 8 || fields[0] == "Iface" {
			continue
		}
		dest, ok1 := hexAddr4(fields[1])
		gw, ok2 := hexAddr4(fields[2])
		mask, ok3 := hexAddr4(fields[7])
		flags, err := strconv.ParseUint(fields[3], 16, 32)
		if !ok1 || !ok2 || !ok3 || err != nil || flags&rtfUp == 0 {
			continue
		}
		m := mask.As4()
		bits := 0
		for _, b := range m {
			for ; b&0x80 != 0; b <<= 1 {
				bits++
			}
		}
		metric, _ := strconv.ParseUint(fields[6], 10, 64)
		rs = append(rs, procRoute{
			dev:       fields[0],
			dest:      netip.PrefixFrom(dest, bits),
			gateway:   gw,
			isGateway: flags&rtfGateway != 0,
			metric:    metric,
		})
	}
	return rs
}

// hexAddr4 decodes an address of /proc/net/route: the kernel prints the
// network-order u32 as a host-order (little-endian) number, so the text's
// bytes come reversed.
func hexAddr4(s string) (netip.Addr, bool) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]}), true
}

func defaultRoute4(rs []procRoute) (string, string) {
	var best *procRoute
	for i := range rs {
		r := &rs[i]
		if r.dest.Bits() != 0 || !r.dest.Addr().IsUnspecified() {
			continue
		}
		if best == nil || r.metric < best.metric {
			best = r
		}
	}
	if best == nil {
		return "", ""
	}
	if !best.isGateway {
		return "", best.dev
	}
	return best.gateway.String(), best.dev
}

// localAddrs4 returns the local IPv4 addresses listed in /proc/net/fib_trie:
// a leaf "|-- A.B.C.D" followed by "/32 host LOCAL". Loopback is left out.
func localAddrs4(lines []string) []netip.Addr {
	var out []netip.Addr
	var leaf netip.Addr
	for _, line := range lines {
		t := strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(t, "|-- "); ok {
			leaf, _ = netip.ParseAddr(strings.TrimSpace(rest))
			continue
		}
		if strings.HasPrefix(t, "/32 host LOCAL") && leaf.IsValid() && !leaf.IsLoopback() && !slices.Contains(out, leaf) {
			out = append(out, leaf)
		}
	}
	return out
}

// connectedPrefix finds the on-link route that covers a, which names the
// interface carrying a and its prefix length.
func connectedPrefix(rs []procRoute, a netip.Addr) (string, netip.Prefix, bool) {
	var best *procRoute
	for i := range rs {
		r := &rs[i]
		if r.isGateway || r.dev == "lo" || r.dest.Bits() == 0 || !r.dest.Contains(a) {
			continue
		}
		if best == nil || r.dest.Bits() > best.dest.Bits() {
			best = r
		}
	}
	if best == nil {
		return "", netip.Prefix{}, false
	}
	return best.dev, best.dest, true
}

// parseIfInet6Line reads /proc/net/if_inet6: address, ifindex, prefix
// length, scope, flags, name. Only global scope (0) is kept.
func parseIfInet6Line(line string) (string, netip.Prefix, bool) {
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[3] != "00" {
		return "", netip.Prefix{}, false
	}
	a, ok := hexAddr6(fields[0])
	bits, err := strconv.ParseUint(fields[2], 16, 8)
	if !ok || err != nil || bits > 128 {
		return "", netip.Prefix{}, false
	}
	return fields[5], netip.PrefixFrom(a, int(bits)), true
}

func hexAddr6(s string) (netip.Addr, bool) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16([16]byte(b)), true
}

// defaultRoute6 reads /proc/net/ipv6_route: destination, its length, source,
// its length, next hop, metric, refcount, use, flags, device.
func defaultRoute6(lines []string) (string, string) {
	gw, dev := "", ""
	var best uint64
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) < 10 || fields[1] != "00" || strings.Trim(fields[0], "0") != "" {
			continue
		}
		hop, ok := hexAddr6(fields[4])
		if !ok || hop.IsUnspecified() || fields[9] == "lo" {
			continue
		}
		metric, _ := strconv.ParseUint(fields[5], 16, 32)
		if dev == "" || metric < best {
			gw, dev, best = hop.String(), fields[9], metric
		}
	}
	return gw, dev
}
