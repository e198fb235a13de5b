package tmpl

import (
	"errors"
	"math/big"
	"net/netip"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// The rest of ansible.utils' ipaddr queries
// (plugins/plugin_utils/base/ipaddr_utils.py) and the filters built on
// them: nthhost, ipmath, next_nth_usable, previous_nth_usable,
// network_in_usable, network_in_network, ipwrap.

// moreQuery answers the queries ipaddrQuery does not; handled is false
// for a query it does not know either. value is the filter's input, which
// some queries return as it was.
func moreQuery(v ipNet, vtype, q string, value any) (out any, handled bool, err error) {
	size := v.size()
	sizeCmp := func(n int64) int { return size.Cmp(big.NewInt(n)) }
	network := v.network()
	bcast, hasBcast := v.broadcast()
	first, last, hasUsable := v.usable()
	notNetwork := errors.New("Not a network address")
	ipInt := new(big.Int).SetBytes(v.ip.AsSlice())
	switch q {
	case "address/prefix", "host/prefix", "gateway", "gw", "hostnet", "router":
		if sizeCmp(2) > 0 && (v.ip == network || hasBcast && v.ip == bcast) {
			return false, true, nil
		}
		return v.String(), true, nil
	case "ip/prefix", "ip_netmask":
		sep, suffix := "/", strconv.Itoa(v.prefix)
		if q == "ip_netmask" {
			sep, suffix = " ", v.mask(false).String()
		}
		if sizeCmp(2) == 0 || sizeCmp(1) > 0 && v.ip != network {
			return v.ip.String() + sep + suffix, true, nil
		}
		return nil, true, nil
	case "network_wildcard":
		return network.String() + " " + v.mask(true).String(), true, nil
	case "first_usable", "last_usable", "next_usable", "previous_usable", "range_usable", "peer":
		if vtype == "address" {
			return nil, true, notNetwork
		}
		if q == "peer" {
			return v.peer()
		}
		if !hasUsable {
			return nil, true, nil
		}
		switch q {
		case "first_usable":
			return first.String(), true, nil
		case "last_usable":
			return last.String(), true, nil
		case "range_usable":
			return first.String() + "-" + last.String(), true, nil
		}
		step := int64(1)
		if q == "previous_usable" {
			step = -1
		}
		if a, ok := v.step(step); ok && !a.Less(first) && !last.Less(a) {
			return a.String(), true, nil
		}
		return nil, true, nil
	case "size_usable":
		switch {
		case sizeCmp(1) == 0:
			return 0, true, nil
		case sizeCmp(2) == 0:
			return 2, true, nil
		}
		n := new(big.Int).Sub(size, big.NewInt(2))
		if n.IsInt64() {
			return int(n.Int64()), true, nil
		}
		return n.String(), true, nil
	case "int":
		if vtype == "address" {
			if ipInt.IsInt64() {
				return int(ipInt.Int64()), true, nil
			}
			return ipInt.String(), true, nil
		}
		return ipInt.String() + "/" + strconv.Itoa(v.prefix), true, nil
	case "revdns":
		return reverseDNS(v.ip), true, nil
	case "wrap":
		if !v.ip.Is6() {
			return value, true, nil
		}
		if vtype == "address" {
			return "[" + v.ip.String() + "]", true, nil
		}
		return "[" + v.ip.String() + "]/" + strconv.Itoa(v.prefix), true, nil
	case "ipv4", "v4":
		if v.ip.Is4() {
			return value, true, nil
		}
		// netaddr converts IPv4-compatible addresses (::a.b.c.d); parseIPNet
		// has already unmapped the IPv4-mapped ones.
		b := v.ip.As16()
		for _, x := range b[:12] {
			if x != 0 {
				return false, true, nil
			}
		}
		if v.prefix < 96 {
			return false, true, nil
		}
		return netip.AddrFrom4([4]byte(b[12:])).String() + "/" + strconv.Itoa(v.prefix-96), true, nil
	case "ipv6", "v6":
		if v.ip.Is6() {
			return value, true, nil
		}
		return netip.AddrFrom16(v.ip.As16()).String() + "/" + strconv.Itoa(v.prefix+96), true, nil
	case "loopback", "lo":
		return keepIf(v.ip.IsLoopback(), value), true, nil
	case "link-local":
		return keepIf(v.ip.IsLinkLocalUnicast(), value), true, nil
	case "multicast":
		return keepIf(v.ip.IsMulticast(), value), true, nil
	case "unicast":
		return keepIf(!v.ip.IsMulticast(), value), true, nil
	case "private":
		return keepIf(!isGlobal(v.ip), value), true, nil
	case "public":
		return keepIf(!v.ip.IsMulticast() && isGlobal(v.ip) && !v.ip.IsLoopback() && !isMaskAddr(v.ip, false) && !isMaskAddr(v.ip, true), value), true, nil
	}
	return nil, false, nil
}

// keepIf is a query's answer that returns the value when cond holds and
// None otherwise.
func keepIf(cond bool, value any) any {
	if cond {
		return value
	}
	return nil
}

// usable is netaddr's first and last usable addresses: both ends of a /31
// (or /127), the ends less one otherwise; none for a single address.
func (v ipNet) usable() (first, last netip.Addr, ok bool) {
	switch size := v.size(); {
	case size.Cmp(big.NewInt(2)) == 0:
		first, _ = v.offset(big.NewInt(0))
		last, _ = v.offset(big.NewInt(1))
		return first, last, true
	case size.Cmp(big.NewInt(1)) > 0:
		first, _ = v.offset(big.NewInt(1))
		last, _ = v.offset(big.NewInt(-2))
		return first, last, true
	}
	return netip.Addr{}, netip.Addr{}, false
}

// step is the address n after v's own (before it when n < 0).
func (v ipNet) step(n int64) (netip.Addr, bool) {
	i := new(big.Int).SetBytes(v.ip.AsSlice())
	return addrFromInt(i.Add(i, big.NewInt(n)), v.bits())
}

// peer is the other end of a point-to-point network (/31, /30).
func (v ipNet) peer() (any, bool, error) {
	i := new(big.Int).SetBytes(v.ip.AsSlice())
	switch {
	case v.sizeIs(2):
		a, _ := addrFromInt(new(big.Int).Xor(i, big.NewInt(1)), v.bits())
		return a.String(), true, nil
	case v.sizeIs(4):
		switch new(big.Int).Mod(i, big.NewInt(4)).Int64() {
		case 0:
			return nil, true, errors.New("Network address of /30 has no peer")
		case 3:
			return nil, true, errors.New("Broadcast address of /30 has no peer")
		}
		a, _ := addrFromInt(new(big.Int).Xor(i, big.NewInt(3)), v.bits())
		return a.String(), true, nil
	}
	return nil, true, errors.New("Not a point-to-point network")
}

func reverseDNS(a netip.Addr) string {
	b := a.AsSlice()
	var parts []string
	if a.Is4() {
		for i := len(b) - 1; i >= 0; i-- {
			parts = append(parts, strconv.Itoa(int(b[i])))
		}
		return strings.Join(parts, ".") + ".in-addr.arpa."
	}
	for i := len(b) - 1; i >= 0; i-- {
		parts = append(parts, strconv.FormatInt(int64(b[i]&0xf), 16), strconv.FormatInt(int64(b[i]>>4), 16))
	}
	return strings.Join(parts, ".") + ".ip6.arpa."
}

// notGlobal are IANA's special-purpose ranges that are not globally
// reachable, which netaddr's is_global reads; globalExceptions lie inside
// them and are.
var notGlobal, globalExceptions = prefixes(
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
	"192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
	"203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32",
	"::1/128", "::/128", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
	"2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10",
), prefixes(
	"192.0.0.9/32", "192.0.0.10/32", "2001:1::1/128", "2001:1::2/128", "2001:3::/32",
	"2001:4:112::/48", "2001:20::/28", "2001:30::/28",
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func isGlobal(a netip.Addr) bool {
	for _, p := range globalExceptions {
		if p.Contains(a) {
			return true
		}
	}
	for _, p := range notGlobal {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// isMaskAddr says whether a is a netmask (ones then zeros), or with host
// a hostmask (zeros then ones).
func isMaskAddr(a netip.Addr, host bool) bool {
	i := new(big.Int).SetBytes(a.AsSlice())
	if host {
		// ones at the end: i+1 is a power of two
		j := new(big.Int).Add(i, big.NewInt(1))
		return j.BitLen() == int(j.TrailingZeroBits())+1
	}
	inv := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(a.BitLen())), big.NewInt(1))
	inv.Xor(inv, i) // a hostmask when i is a netmask
	j := inv.Add(inv, big.NewInt(1))
	return j.BitLen() == int(j.TrailingZeroBits())+1
}

// normalizedNet is the value nthhost and next_nth_usable work on: an
// address as a single-address network, a network as its subnet, an
// address with a prefix as it is.
func normalizedNet(in *exec.Value) (ipNet, bool) {
	if in.IsList() || !in.IsTrue() {
		return ipNet{}, false
	}
	v, _, ok := parseIPNet(in.String())
	return v, ok
}

// filterNthhost is ansible.utils' nthhost: the nth address of a network,
// counted from its first (negative: from its last).
func filterNthhost(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	v, ok := normalizedNet(in)
	q := param(params, 0, "query")
	if !ok || q == nil || !q.IsTrue() {
		return exec.AsValue(false)
	}
	n, ok := new(big.Int).SetString(strings.TrimSpace(q.String()), 10)
	if !ok {
		return exec.AsValue(false)
	}
	a, ok := (ipNet{v.network(), v.prefix}).offset(n)
	if !ok {
		return exec.AsValue(false)
	}
	return exec.AsValue(a.String())
}

// filterIPMath is ansible.utils' ipmath: an address plus or minus an
// integer.
func filterIPMath(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	v, _, ok := parseIPNet(in.String())
	if !ok || in.IsList() {
		return fail("ipmath: you must pass a valid IP address; %s is invalid", in.String())
	}
	amount := param(params, 0, "amount")
	if amount == nil || !amount.IsInteger() {
		return fail("ipmath: you must pass an integer for arithmetic; %v is not a valid integer", amount)
	}
	a, ok := v.step(int64(amount.Integer()))
	if !ok {
		return fail("ipmath: %s%+d is out of the IPv%d address space", v.ip, amount.Integer(), map[bool]int{true: 4, false: 6}[v.ip.Is4()])
	}
	return exec.AsValue(a.String())
}

// nthUsable is next_nth_usable (sign 1) and previous_nth_usable (-1): the
// usable address offset away from the value's, or None.
func nthUsable(name string, sign int64) exec.FilterFunction {
	return func(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		if in.IsError() {
			return in
		}
		v, ok := normalizedNet(in)
		if !ok {
			return exec.AsValue(false)
		}
		offset := param(params, 0, "offset")
		if offset == nil || !offset.IsInteger() {
			return fail("%s: must pass in an integer", name)
		}
		first, last, ok := v.usable()
		if !ok {
			return exec.AsValue(nil)
		}
		a, ok := v.step(sign * int64(offset.Integer()))
		if !ok || a.Less(first) || last.Less(a) {
			return exec.AsValue(nil)
		}
		return exec.AsValue(a.String())
	}
}

// filterNetworkIn is network_in_usable and network_in_network: whether the
// test address or network lies wholly in the value's network (both ends
// included, as ansible.utils compares them).
func filterNetworkIn(name string) exec.FilterFunction {
	return func(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		if in.IsError() {
			return in
		}
		test := param(params, 0, "test")
		outer, ok := normalizedNet(in)
		if !ok || test == nil {
			return fail("%s: %s is not an IP address or network", name, in.String())
		}
		inner, _, ok := parseIPNet(test.String())
		if !ok {
			return fail("%s: %s is not an IP address or network", name, test.String())
		}
		if inner.ip.BitLen() != outer.ip.BitLen() {
			return exec.AsValue(false)
		}
		p := netip.PrefixFrom(outer.ip, outer.prefix).Masked()
		lastInner, _ := (ipNet{inner.network(), inner.prefix}).offset(big.NewInt(-1))
		return exec.AsValue(p.Contains(inner.network()) && p.Contains(lastInner))
	}
}

// filterIPWrap is ipwrap: IPv6 addresses in brackets, anything else as it
// is (a list item by item).
func filterIPWrap(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	wrap := func(item *exec.Value) any {
		v, vtype, ok := parseIPNet(item.String())
		if item.IsList() || !item.IsTrue() || !ok || !v.ip.Is6() {
			return item.Interface()
		}
		out, _, _ := moreQuery(v, vtype, "wrap", item.Interface())
		return out
	}
	if in.IsList() {
		out := make([]any, 0, in.Len())
		for i := 0; i < in.Len(); i++ {
			out = append(out, wrap(in.Index(i)))
		}
		return exec.AsValue(out)
	}
	return exec.AsValue(wrap(in))
}

// filterIPSubnet is ansible.utils' ipsubnet: with no query, the value's
// subnet; with a prefix length, how many subnets of that length the value
// holds (as text), or with an index the index-th of them (for a single
// address, its index-th supernet from that length); with a network, the
// 1-based position of the value among that network's subnets of the
// value's length.
func filterIPSubnet(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	v, ok := normalizedNet(in)
	if !ok {
		return exec.AsValue(false)
	}
	subnet := ipNet{v.network(), v.prefix}
	query := param(params, 0, "query")
	if query == nil || !query.IsTrue() {
		return exec.AsValue(subnet.String())
	}
	q := strings.TrimSpace(query.String())
	if length, err := strconv.Atoi(q); err == nil && length >= 0 && q == strconv.Itoa(length) {
		return exec.AsValue(nthSubnet(subnet, length, param(params, 1, "index")))
	}
	outer, ok := normalizedNet(query)
	if !ok {
		return fail("ipsubnet: you must pass a valid subnet or IP address; %s is invalid", q)
	}
	outerNet := netip.PrefixFrom(outer.ip, outer.prefix).Masked()
	if outer.bits() != subnet.bits() || subnet.prefix < outer.prefix || !outerNet.Contains(subnet.ip) {
		return fail("ipsubnet: %s is not in the subnet %s", subnet, outerNet)
	}
	// Subnets of the value's length are numbered from 1 across outer.
	offset := new(big.Int).Sub(new(big.Int).SetBytes(subnet.ip.AsSlice()), new(big.Int).SetBytes(outerNet.Addr().AsSlice()))
	pos := offset.Rsh(offset, uint(subnet.bits()-subnet.prefix))
	return exec.AsValue(pos.Add(pos, big.NewInt(1)).String())
}

// nthSubnet answers ipsubnet(length[, index]) for subnet.
func nthSubnet(subnet ipNet, length int, index *exec.Value) any {
	if length > subnet.bits() {
		return false
	}
	if subnet.prefix == subnet.bits() {
		// A single address: its supernets of lengths length .. bits-1.
		if length >= subnet.bits() {
			return false
		}
		i := 0
		if index != nil && !index.IsNil() {
			if !index.IsInteger() {
				return false
			}
			i = index.Integer()
		}
		n := subnet.bits() - length
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			return false
		}
		p := length + i
		return netip.PrefixFrom(subnet.ip, p).Masked().String()
	}
	count := big.NewInt(0)
	if length >= subnet.prefix {
		count = new(big.Int).Lsh(big.NewInt(1), uint(length-subnet.prefix))
	}
	if index == nil || index.IsNil() || !index.IsInteger() {
		return count.String()
	}
	i := big.NewInt(int64(index.Integer()))
	if i.Sign() < 0 {
		i.Add(i, count)
	}
	if i.Sign() < 0 || i.Cmp(count) >= 0 {
		return false
	}
	base := new(big.Int).SetBytes(subnet.ip.AsSlice())
	base.Add(base, i.Lsh(i, uint(subnet.bits()-length)))
	a, ok := addrFromInt(base, subnet.bits())
	if !ok {
		return false
	}
	return a.String() + "/" + strconv.Itoa(length)
}
