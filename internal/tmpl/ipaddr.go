package tmpl

import (
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// ipNet is netaddr's IPNetwork as ansible.utils' ipaddr filters see it:
// an address with a prefix, the host bits kept.
type ipNet struct {
	ip     netip.Addr
	prefix int
}

func (v ipNet) bits() int { return v.ip.BitLen() }

func (v ipNet) network() netip.Addr { return netip.PrefixFrom(v.ip, v.prefix).Masked().Addr() }

// offset is the address n after the network's first (n < 0 counts back
// from its last), and whether it is inside the network.
func (v ipNet) offset(n *big.Int) (netip.Addr, bool) {
	size := v.size()
	if n.Sign() < 0 {
		n = new(big.Int).Add(size, n)
	}
	if n.Sign() < 0 || n.Cmp(size) >= 0 {
		return netip.Addr{}, false
	}
	base := new(big.Int).SetBytes(v.network().AsSlice())
	return addrFromInt(base.Add(base, n), v.bits())
}

func (v ipNet) size() *big.Int { return new(big.Int).Lsh(big.NewInt(1), uint(v.bits()-v.prefix)) }

func (v ipNet) sizeIs(n int64) bool { return v.size().Cmp(big.NewInt(n)) == 0 }

// broadcast is the last address; netaddr has none for /31 and /32 (/127
// and /128).
func (v ipNet) broadcast() (netip.Addr, bool) {
	if v.bits()-v.prefix < 2 {
		return netip.Addr{}, false
	}
	return v.offset(big.NewInt(-1))
}

func (v ipNet) mask(host bool) netip.Addr {
	b := make([]byte, v.bits()/8)
	for i := range b {
		ones := min(max(v.prefix-8*i, 0), 8)
		b[i] = byte(0xff << (8 - ones))
		if host {
			b[i] = ^b[i]
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (v ipNet) String() string { return v.ip.String() + "/" + strconv.Itoa(v.prefix) }

func addrFromInt(n *big.Int, bits int) (netip.Addr, bool) {
	if n.Sign() < 0 || n.BitLen() > bits {
		return netip.Addr{}, false
	}
	b := n.FillBytes(make([]byte, bits/8))
	a, ok := netip.AddrFromSlice(b)
	return a, ok
}

// parseIPNet reads what netaddr.IPNetwork reads: an address, address/prefix,
// IPv4 address/netmask, or an integer; vtype says whether a prefix was given.
func parseIPNet(s string) (ipNet, string, bool) {
	if n, ok := new(big.Int).SetString(s, 10); ok && !strings.HasPrefix(s, "-") && !strings.HasPrefix(s, "+") {
		for _, bits := range []int{32, 128} {
			if a, ok := addrFromInt(n, bits); ok {
				return ipNet{a, bits}, "address", true
			}
		}
		return ipNet{}, "", false
	}
	addr, pfx, hasPrefix := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" {
		return ipNet{}, "", false
	}
	a = a.Unmap()
	if !hasPrefix {
		return ipNet{a, a.BitLen()}, "address", true
	}
	if p, err := strconv.Atoi(pfx); err == nil && pfx == strconv.Itoa(p) && p >= 0 && p <= a.BitLen() {
		return ipNet{a, p}, "network", true
	}
	if m, err := netip.ParseAddr(pfx); err == nil && a.Is4() && m.Is4() {
		b := m.As4()
		ones := 0
		for ones < 32 && b[ones/8]&(0x80>>(ones%8)) != 0 {
			ones++
		}
		if (ipNet{m, ones}).mask(false) == m {
			return ipNet{a, ones}, "network", true
		}
	}
	return ipNet{}, "", false
}

// ipaddrQuery follows ipaddr in ansible.utils'
// plugins/plugin_utils/base/ipaddr_utils.py (moreQuery has the rarer
// queries).
// It returns nil for Python's None and false for False.
func ipaddrQuery(value *exec.Value, query *exec.Value, version int, alias string) (any, error) {
	if value.IsList() {
		out := []any{}
		for i := 0; i < value.Len(); i++ {
			r, err := ipaddrQuery(value.Index(i), query, version, alias)
			if err != nil {
				return nil, err
			}
			if r != nil && r != false && r != "" && r != 0 {
				out = append(out, r)
			}
		}
		return out, nil
	}
	if !value.IsTrue() || (value.IsBool() && value.Bool()) {
		return false, nil
	}
	v, vtype, ok := parseIPNet(value.String())
	if !ok {
		return false, nil
	}
	if version != 0 && (v.ip.Is4() && version != 4 || v.ip.Is6() && version != 6) {
		return false, nil
	}
	q := ""
	if query != nil && !query.IsNil() {
		q = query.String()
	}
	network := v.network()
	bcast, hasBcast := v.broadcast()
	hostAddr := v.bits() == v.prefix || v.ip != network || !hasBcast
	switch q {
	case "":
		if vtype == "address" {
			return v.ip.String(), nil
		}
		return v.String(), nil
	case "address", "ip":
		if hostAddr || v.ip.Is6() {
			return v.ip.String(), nil
		}
		return nil, nil
	case "host":
		if hostAddr {
			return v.String(), nil
		}
		return nil, nil
	case "network", "network_id":
		return network.String(), nil
	case "netmask":
		return v.mask(false).String(), nil
	case "hostmask", "wildcard":
		return v.mask(true).String(), nil
	case "prefix":
		return v.prefix, nil
	case "broadcast":
		if hasBcast {
			return bcast.String(), nil
		}
		return nil, nil
	case "cidr":
		return v.String(), nil
	case "subnet", "network/prefix":
		return network.String() + "/" + strconv.Itoa(v.prefix), nil
	case "net":
		if v.prefix < v.bits() && v.ip == network {
			return network.String() + "/" + strconv.Itoa(v.prefix), nil
		}
		return nil, nil
	case "network_netmask":
		return network.String() + " " + v.mask(false).String(), nil
	case "size":
		if s := v.size(); s.IsInt64() {
			return int(s.Int64()), nil
		}
		return v.size().String(), nil
	case "type":
		if v.prefix == v.bits() || v.ip != network {
			return "address", nil
		}
		return "network", nil
	case "version":
		if v.ip.Is4() {
			return 4, nil
		}
		return 6, nil
	case "bool":
		return true, nil
	}
	if out, handled, err := moreQuery(v, vtype, q, value.Interface()); handled {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", alias, err)
		}
		return out, nil
	}
	if n, ok := new(big.Int).SetString(q, 10); ok {
		if v.sizeIs(1) {
			if vtype == "address" {
				return v.ip.String(), nil
			}
			return v.String(), nil
		}
		a, ok := v.offset(n)
		if !ok {
			return false, nil
		}
		return a.String() + "/" + strconv.Itoa(v.prefix), nil
	}
	// A query that is itself a network asks whether value lies in it.
	if within, _, ok := parseIPNet(q); ok {
		outer := netip.PrefixFrom(within.ip, within.prefix).Masked()
		if v.ip.BitLen() == within.ip.BitLen() && v.prefix >= within.prefix && outer.Contains(v.ip) {
			return value.Interface(), nil
		}
		return false, nil
	}
	return nil, errUnknownQuery(alias, q)
}

type unknownQueryError struct{ alias, query string }

func (e *unknownQueryError) Error() string { return e.alias + ": unknown filter type: " + e.query }

func errUnknownQuery(alias, q string) error { return &unknownQueryError{alias, q} }

func ipFilter(alias string, version int) exec.FilterFunction {
	return func(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		if in.IsError() {
			return in
		}
		out, err := ipaddrQuery(in, param(params, 0, "query"), version, alias)
		if err != nil {
			return fail("%w", err)
		}
		return exec.AsValue(out)
	}
}
