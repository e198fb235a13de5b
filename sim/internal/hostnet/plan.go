// Package hostnet is the simulated hosts' network: the fleet's addressing,
// OVH style (Plan), and each host's link in its network namespace (Link):
// its name, addresses and routes in each boot, its DHCP lease, and the
// /sys/class/net a real NIC would have.
package hostnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Default address ranges of a fleet (documentation ranges).
const (
	DefaultSubnet  = "203.0.113.0/24"
	DefaultSubnet6 = "2001:db8:1::/48"
)

// MaxHosts is how many hosts a /24 holds besides the gateway at .254.
const MaxHosts = 253

// FleetID names a fleet's bridge, links and namespaces after its directory,
// so fleets in different directories never collide.
func FleetID(absDir string) string {
	sum := sha256.Sum256([]byte(absDir))
	return hex.EncodeToString(sum[:3])
}

// Plan is the addressing of one fleet, OVH style: hosts in one IPv4 /24 with
// the gateway at .254, and one IPv6 /64 each whose gateway lies outside it
// (the /56's xxff:ff:ff:ff:ff, on the bridge).
type Plan struct {
	ID      string
	Bridge  string
	Subnet  netip.Prefix // IPv4 /24
	GW4     netip.Addr
	Prefix6 netip.Prefix // the /56 the host /64s and the gateway come from
	GW6     netip.Addr
}

func NewPlan(absDir string, subnet, subnet6 netip.Prefix) (Plan, error) {
	if !subnet.Addr().Is4() || subnet.Bits() != 24 {
		return Plan{}, fmt.Errorf("subnet %s: want an IPv4 /24", subnet)
	}
	subnet = subnet.Masked()
	if !subnet6.IsValid() {
		subnet6 = defaultSubnet6For(subnet)
	}
	if !subnet6.Addr().Is6() || subnet6.Bits() > 56 {
		return Plan{}, fmt.Errorf("IPv6 subnet %s: want a prefix of at most /56", subnet6)
	}
	p6 := netip.PrefixFrom(subnet6.Addr(), 56).Masked()
	gw := p6.Addr().As16()
	gw[7] = 0xff
	for i := 8; i < 16; i += 2 {
		gw[i], gw[i+1] = 0, 0xff
	}
	id := FleetID(absDir)
	b4 := subnet.Addr().As4()
	b4[3] = 254
	return Plan{
		ID:      id,
		Bridge:  "nbs" + id,
		Subnet:  subnet,
		GW4:     netip.AddrFrom4(b4),
		Prefix6: p6,
		GW6:     netip.AddrFrom16(gw),
	}, nil
}

// defaultSubnet6For gives each documentation /24 its own IPv6 range so that
// fleets started with only --subnet do not collide.
func defaultSubnet6For(subnet netip.Prefix) netip.Prefix {
	switch subnet.Masked().String() {
	case DefaultSubnet:
		return netip.MustParsePrefix(DefaultSubnet6)
	case "198.51.100.0/24":
		return netip.MustParsePrefix("2001:db8:2::/48")
	case "192.0.2.0/24":
		return netip.MustParsePrefix("2001:db8:3::/48")
	}
	b := subnet.Addr().As4()
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, b[1], b[2]}), 48)
}

// HostV4 is host i's address (1-based) with its /24.
func (p Plan) HostV4(i int) netip.Prefix {
	b := p.Subnet.Addr().As4()
	b[3] = byte(i)
	return netip.PrefixFrom(netip.AddrFrom4(b), 24)
}

// HostV6 is host i's ::1 in its own /64.
func (p Plan) HostV6(i int) netip.Prefix {
	b := p.Prefix6.Addr().As16()
	b[7] = byte(i)
	b[15] = 1
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// NetnsName is the network namespace of the host named host.
func (p Plan) NetnsName(host string) string { return "nbs-" + p.ID + "-" + host }

// VethName is the bridge side of host i's link.
func (p Plan) VethName(i int) string { return fmt.Sprintf("nbs%sv%d", p.ID, i) }

// HostMAC is a stable, locally administered MAC for host i.
func (p Plan) HostMAC(i int) string {
	id, _ := hex.DecodeString(p.ID)
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", id[0], id[1], id[2], byte(i>>8), byte(i))
}

// IP runs iproute2 commands, one per line, in one process (`ip -batch`),
// inside netns when it is not empty.
func IP(ctx context.Context, netns string, lines ...string) error {
	args := []string{"-batch", "-"}
	if netns != "" {
		args = append([]string{"-n", netns}, args...)
	}
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		where := "machine"
		if netns != "" {
			where = netns
		}
		return fmt.Errorf("ip in %s: %w: %s [%s]", where, err, strings.TrimSpace(string(out)), strings.Join(lines, "; "))
	}
	return nil
}

func LinkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

// checkFree refuses a subnet another fleet, or the machine, already routes,
// and one holding an address the machine reaches by name: a fleet's bridge
// would take its traffic (here the Debian mirror and the Go module proxy
// sit at a documentation address in /etc/hosts).
func checkFree(ctx context.Context, p Plan) error {
	named := machineNamedAddrs("/etc/hosts", "/etc/resolv.conf")
	named = append(named, resolvedAddrs(ctx, mirrorNames())...)
	if err := namedConflict(p, named); err != nil {
		return err
	}
	for _, check := range []struct{ family, prefix string }{{"-4", p.Subnet.String()}, {"-6", p.Prefix6.String()}} {
		out, err := exec.CommandContext(ctx, "ip", check.family, "route", "show", "match", check.prefix).Output()
		if err != nil {
			return fmt.Errorf("ip route: %w", err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line == "" || strings.HasPrefix(line, "default") {
				continue
			}
			return fmt.Errorf("%s is already in use on this machine (%s): pick another subnet", check.prefix, line)
		}
	}
	if LinkExists(p.Bridge) {
		return fmt.Errorf("bridge %s already exists: is a fleet already up in this directory?", p.Bridge)
	}
	return nil
}

// namedAddr is an address the machine reaches by name.
type namedAddr struct {
	addr netip.Addr
	name string
}

// namedConflict refuses a plan whose subnets hold one of addrs.
func namedConflict(p Plan, addrs []namedAddr) error {
	for _, use := range addrs {
		if p.Subnet.Contains(use.addr) || p.Prefix6.Contains(use.addr) {
			return fmt.Errorf("%s holds %s, which this machine reaches as %s: a fleet there would cut it off; pick another subnet", p.Subnet, use.addr, use.name)
		}
	}
	return nil
}

// machineNamedAddrs lists the addresses of the hosts file's names and the
// resolver's name servers, loopback aside.
func machineNamedAddrs(hostsFile, resolvConf string) []namedAddr {
	var out []namedAddr
	add := func(field, name string) {
		if a, err := netip.ParseAddr(field); err == nil && !a.IsLoopback() {
			out = append(out, namedAddr{a.Unmap(), name})
		}
	}
	if data, err := os.ReadFile(hostsFile); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			line, _, _ = strings.Cut(line, "#")
			if f := strings.Fields(line); len(f) >= 2 {
				add(f[0], strings.Join(f[1:], " "))
			}
		}
	}
	if data, err := os.ReadFile(resolvConf); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
				add(f[1], "the name server")
			}
		}
	}
	return out
}

// mirrorNames are the hosts the machine downloads from while fleets run:
// its apt sources, the Go module proxy, the ZFS guest's Debian mirror.
func mirrorNames() []string {
	names := []string{"deb.debian.org"}
	if m := os.Getenv("ZFSVM_MIRROR"); m != "" {
		names = append(names, m)
	}
	proxy := os.Getenv("GOPROXY")
	if proxy == "" {
		proxy = "https://proxy.golang.org"
	}
	names = append(names, strings.FieldsFunc(proxy, func(r rune) bool { return r == ',' || r == '|' })...)
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	for _, f := range append(files, "/etc/apt/sources.list") {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(data)) {
			if strings.HasPrefix(field, "http://") || strings.HasPrefix(field, "https://") {
				names = append(names, field)
			}
		}
	}
	return names
}

// resolvedAddrs resolves the host part of each name or URL, briefly: a
// name that does not resolve is not in the way.
func resolvedAddrs(ctx context.Context, names []string) []namedAddr {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var out []namedAddr
	seen := map[string]bool{}
	for _, n := range names {
		host := n
		if u, err := url.Parse(n); err == nil && u.Host != "" {
			host = u.Hostname()
		}
		if host == "" || seen[host] {
			continue
		}
		seen[host] = true
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if !a.IsLoopback() {
				out = append(out, namedAddr{a.Unmap(), host})
			}
		}
	}
	return out
}

// candidateSubnets are the /24s a fleet without a subnet tries, in order:
// the documentation ranges, then the benchmarking range 198.18.0.0/15.
func candidateSubnets() []netip.Prefix {
	out := []netip.Prefix{
		netip.MustParsePrefix(DefaultSubnet),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("192.0.2.0/24"),
	}
	for i := range 512 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, byte(18 + i/256), byte(i % 256), 0}), 24))
	}
	return out
}

// Choose addresses a fleet in subnet, or in the first free candidate
// when subnet is empty.
func Choose(ctx context.Context, absDir, subnet, subnet6 string) (Plan, error) {
	var p6 netip.Prefix
	if subnet6 != "" {
		var err error
		if p6, err = netip.ParsePrefix(subnet6); err != nil {
			return Plan{}, fmt.Errorf("IPv6 subnet: %w", err)
		}
	}
	if subnet != "" {
		p4, err := netip.ParsePrefix(subnet)
		if err != nil {
			return Plan{}, fmt.Errorf("subnet: %w", err)
		}
		p, err := NewPlan(absDir, p4, p6)
		if err != nil {
			return Plan{}, err
		}
		return p, checkFree(ctx, p)
	}
	var lastErr error
	for _, cand := range candidateSubnets() {
		p, err := NewPlan(absDir, cand, p6)
		if err != nil {
			return Plan{}, err
		}
		if lastErr = checkFree(ctx, p); lastErr == nil {
			return p, nil
		}
		if LinkExists(p.Bridge) {
			return Plan{}, lastErr
		}
	}
	return Plan{}, fmt.Errorf("no free subnet for the fleet: %w", lastErr)
}

// LockMachine takes the machine-wide lock of fleets being set up.
func LockMachine() (unlock func(), err error) {
	if err := os.MkdirAll("/run/lock", 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile("/run/lock/nixbook-sim.lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock fleet setup: %w", err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
