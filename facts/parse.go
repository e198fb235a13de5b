package facts

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// section is one "==> NAME [ARG]" block of the script's output.
type section struct {
	name, arg string
	lines     []string
}

// Parse builds Facts from the output of Script.
func Parse(out []byte) (*Facts, error) {
	secs := splitSections(out)
	if len(secs) == 0 {
		return nil, errors.New("parse facts: no sections in output (not the facts script's output?)")
	}
	f := &Facts{}
	get := func(name string) *section {
		for i := range secs {
			if secs[i].name == name {
				return &secs[i]
			}
		}
		return nil
	}
	first := func(name string) string {
		if s := get(name); s != nil && len(s.lines) > 0 {
			return strings.TrimSpace(s.lines[0])
		}
		return ""
	}
	if get("hostname") == nil || get("boot_id") == nil {
		return nil, errors.New("parse facts: output lacks the hostname or boot_id section (truncated?)")
	}

	f.Hostname = first("hostname")
	if s := get("os-release"); s != nil {
		f.OS = parseOSRelease(s.lines)
	}
	f.Kernel = first("kernel")
	f.Arch = first("arch")
	f.BootID = first("boot_id")
	f.Firmware = first("firmware")
	if v := first("memtotal_kb"); v != "" {
		kb, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse facts: MemTotal %q: %w", v, err)
		}
		f.MemoryMB = kb / 1024
	}
	if v := first("cpus"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("parse facts: cpu count %q: %w", v, err)
		}
		f.CPUs = n
	}
	f.Rescue = IsRescue(f.Hostname, f.OS)

	parseNetwork(f, secs, get)
	if s := get("resolv"); s != nil {
		f.Nameservers = parseResolv(s.lines)
	}
	if err := parseDisks(f, get); err != nil {
		return nil, err
	}
	if s := get("mounts"); s != nil {
		f.Mounts = parseMounts(s.lines)
	}
	normalize(f)
	return f, nil
}

func splitSections(out []byte) []section {
	var secs []section
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if rest, ok := strings.CutPrefix(line, "==> "); ok {
			name, arg, _ := strings.Cut(strings.TrimSpace(rest), " ")
			secs = append(secs, section{name: name, arg: arg})
			continue
		}
		if len(secs) == 0 {
			continue // anything before the first header (a login banner) is noise
		}
		s := &secs[len(secs)-1]
		s.lines = append(s.lines, line)
	}
	for i := range secs {
		l := secs[i].lines
		for len(l) > 0 && strings.TrimSpace(l[len(l)-1]) == "" {
			l = l[:len(l)-1]
		}
		secs[i].lines = l
	}
	return secs
}

// rescueHostname matches the first label of the host names OVH gives its
// rescue systems: rescue-customer-eu, rescue12-customer-ca, rescue64,
// rescue-pro, and rescue (rescue.ovh.net).
var rescueHostname = regexp.MustCompile(`^rescue[0-9]*(-.*)?$`)

// IsRescue reports whether a host is an OVH rescue system. The rule: the first
// label of the host name, lower-cased, is "rescue" optionally followed by
// digits and optionally by "-" and anything (rescue-customer-eu, rescue64,
// rescue12-customer-ca, rescue.ovh.net); or os-release's VARIANT_ID is
// "rescue", or its ID or PRETTY_NAME mentions "rescue". A host merely named
// "rescuer" or "myrescue" is not a rescue system.
func IsRescue(hostname string, os OSRelease) bool {
	label, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(hostname)), ".")
	if rescueHostname.MatchString(label) {
		return true
	}
	if strings.EqualFold(os.VariantID, "rescue") {
		return true
	}
	return strings.Contains(strings.ToLower(os.ID), "rescue") ||
		strings.Contains(strings.ToLower(os.PrettyName), "rescue")
}

// ParseOSRelease reads the fields of /etc/os-release nixbook uses, with the
// shell quoting the format allows undone.
func ParseOSRelease(text string) OSRelease {
	return parseOSRelease(strings.Split(text, "\n"))
}

func parseOSRelease(lines []string) OSRelease {
	var r OSRelease
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = unquoteShell(v)
		switch k {
		case "ID":
			r.ID = v
		case "VERSION_ID":
			r.VersionID = v
		case "VARIANT_ID":
			r.VariantID = v
		case "PRETTY_NAME":
			r.PrettyName = v
		}
	}
	return r
}

// unquoteShell undoes the quoting os-release allows: "..." with backslash
// escapes, or '...'.
func unquoteShell(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
			}
			b.WriteByte(v[i])
		}
		return b.String()
	}
	return v
}

func parseResolv(lines []string) []string {
	var ns []string
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "nameserver" && !slices.Contains(ns, fields[1]) {
			ns = append(ns, fields[1])
		}
	}
	return ns
}

// parseMounts keeps the lines of /proc/mounts that name a device path or a
// ZFS dataset, decoding the octal escapes the kernel uses for spaces.
func parseMounts(lines []string) []Mount {
	var ms []Mount
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) < 3 {
			continue
		}
		if !strings.HasPrefix(fields[0], "/") && fields[2] != "zfs" {
			continue
		}
		ms = append(ms, Mount{
			Device:     unescapeOctal(fields[0]),
			Mountpoint: unescapeOctal(fields[1]),
			FSType:     fields[2],
		})
	}
	return ms
}

func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && isOctal(s[i+1:i+4]) {
			n, _ := strconv.ParseUint(s[i+1:i+4], 8, 8)
			b.WriteByte(byte(n))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	for _, c := range s {
		if c < '0' || c > '7' {
			return false
		}
	}
	return len(s) == 3
}

// --- network ---

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
			name, addr, ok := parseIPAddrLine(line)
			if ok {
				addAddr(iface(name), addr)
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
// It returns IPv4 addresses except host-scope ones and IPv6 global ones.
func parseIPAddrLine(line string) (string, netip.Prefix, bool) {
	fields := strings.Fields(line)
	if len(fields) < 4 {
		return "", netip.Prefix{}, false
	}
	name := strings.TrimSuffix(fields[1], ":")
	name, _, _ = strings.Cut(name, "@")
	family := fields[2]
	if family != "inet" && family != "inet6" {
		return "", netip.Prefix{}, false
	}
	scope := ""
	for j := 3; j+1 < len(fields); j++ {
		if fields[j] == "scope" {
			scope = fields[j+1]
			break
		}
	}
	if family == "inet6" && scope != "global" || family == "inet" && scope == "host" {
		return "", netip.Prefix{}, false
	}
	p, ok := parsePrefix(fields[3])
	return name, p, ok
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

// --- disks ---

// lsblkDevice is one device of `lsblk -J -b`. Old lsblk versions print every
// value as a string, newer ones use numbers, booleans and null.
type lsblkDevice struct {
	Name       string        `json:"name"`
	Path       string        `json:"path"`
	Size       flexInt       `json:"size"`
	Model      string        `json:"model"`
	Rota       flexBool      `json:"rota"`
	Tran       string        `json:"tran"`
	Type       string        `json:"type"`
	FSType     string        `json:"fstype"`
	Label      string        `json:"label"`
	PartLabel  string        `json:"partlabel"`
	UUID       string        `json:"uuid"`
	Mountpoint string        `json:"mountpoint"`
	PTType     string        `json:"pttype"`
	Children   []lsblkDevice `json:"children"`
}

type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("size %s: %w", b, err)
	}
	*n = flexInt(v)
	return nil
}

type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	switch strings.Trim(string(b), `"`) {
	case "true", "1":
		*v = true
	}
	return nil
}

var loopPath = regexp.MustCompile(`^/dev/loop[0-9]+$`)

func parseDisks(f *Facts, get func(string) *section) error {
	// aliases maps a symlink target (/dev/loop3) to the disk-like name that
	// points at it (/dev/sda), which is how loop-backed disks are presented.
	aliases := map[string]string{}
	if s := get("dev-links"); s != nil {
		for name, target := range parseLsLinks(s.lines, "/dev") {
			aliases[target] = name
		}
	}
	byID := map[string][]string{}
	if s := get("by-id"); s != nil {
		for name, target := range parseLsLinks(s.lines, "/dev/disk/by-id") {
			byID[target] = append(byID[target], name)
		}
	}
	alias := func(p string) string {
		if a, ok := aliases[p]; ok {
			return a
		}
		return p
	}

	if s := get("lsblk"); s != nil {
		var doc struct {
			BlockDevices []lsblkDevice `json:"blockdevices"`
		}
		if err := json.Unmarshal([]byte(strings.Join(s.lines, "\n")), &doc); err != nil {
			return fmt.Errorf("parse facts: lsblk output: %w", err)
		}
		for _, d := range doc.BlockDevices {
			devPath := d.Path
			if devPath == "" {
				devPath = "/dev/" + d.Name
			}
			if !wholeDisk(d.Type, d.Name, alias(devPath), int64(d.Size)) {
				continue
			}
			disk := Disk{
				Path:       alias(devPath),
				SizeBytes:  int64(d.Size),
				Model:      strings.TrimSpace(d.Model),
				Rotational: bool(d.Rota),
				Transport:  d.Tran,
				ByID:       byID[devPath],
				PartTable:  d.PTType,
				FSType:     d.FSType,
			}
			for _, c := range d.Children {
				if c.Type != "part" {
					continue
				}
				cp := c.Path
				if cp == "" {
					cp = "/dev/" + c.Name
				}
				disk.Partitions = append(disk.Partitions, Partition{
					Path:       alias(cp),
					Number:     partNumber(c.Name),
					SizeBytes:  int64(c.Size),
					FSType:     c.FSType,
					Label:      c.Label,
					PartLabel:  c.PartLabel,
					UUID:       c.UUID,
					Mountpoint: c.Mountpoint,
				})
			}
			f.Disks = append(f.Disks, disk)
		}
	}

	if s := get("sysblock"); s != nil {
		var cur *Disk
		for _, line := range s.lines {
			fields := strings.Fields(line)
			if len(fields) < 4 {
				continue
			}
			switch fields[0] {
			case "disk":
				cur = nil
				name := fields[1]
				sectors, _ := strconv.ParseInt(fields[2], 10, 64)
				p := alias("/dev/" + name)
				typ := "disk"
				if strings.HasPrefix(name, "loop") {
					typ = "loop"
				}
				if !wholeDisk(typ, name, p, sectors*512) || virtualBlockName(name) {
					continue
				}
				d := Disk{
					Path:       p,
					SizeBytes:  sectors * 512,
					Model:      strings.Join(fields[4:], " "),
					Rotational: fields[3] == "1",
					ByID:       byID["/dev/"+name],
				}
				if strings.HasPrefix(name, "nvme") {
					d.Transport = "nvme"
				}
				f.Disks = append(f.Disks, d)
				cur = &f.Disks[len(f.Disks)-1]
			case "part":
				if cur == nil {
					continue
				}
				n, _ := strconv.Atoi(fields[2])
				sectors, _ := strconv.ParseInt(fields[3], 10, 64)
				cur.Partitions = append(cur.Partitions, Partition{
					Path:      alias("/dev/" + fields[1]),
					Number:    n,
					SizeBytes: sectors * 512,
				})
			}
		}
	}

	// Mountpoints are not in the sysfs fallback; /proc/mounts has them.
	if s := get("mounts"); s != nil {
		ms := parseMounts(s.lines)
		for i := range f.Disks {
			for j := range f.Disks[i].Partitions {
				p := &f.Disks[i].Partitions[j]
				if p.Mountpoint != "" {
					continue
				}
				for _, m := range ms {
					if m.Device == p.Path {
						p.Mountpoint = m.Mountpoint
						break
					}
				}
			}
		}
	}

	slices.SortStableFunc(f.Disks, func(a, b Disk) int { return naturalCompare(a.Path, b.Path) })
	for i := range f.Disks {
		d := &f.Disks[i]
		slices.Sort(d.ByID)
		slices.SortStableFunc(d.Partitions, func(a, b Partition) int { return a.Number - b.Number })
	}
	return nil
}

// wholeDisk decides which block devices are disks nixbook may install on:
// lsblk type "disk" except RAM-backed ones and empty ones (card readers
// without a card), and type "loop" only when presented under a disk-like
// name (not /dev/loopN), as loop-backed test servers present /dev/sda.
func wholeDisk(typ, name, devPath string, size int64) bool {
	if size <= 0 {
		return false
	}
	switch typ {
	case "disk":
		return !strings.HasPrefix(name, "zram") && !strings.HasPrefix(name, "ram")
	case "loop":
		return !loopPath.MatchString(devPath)
	}
	return false
}

// virtualBlockName reports sysfs block names that are not disks, for the
// fallback that has no lsblk TYPE to go by.
func virtualBlockName(name string) bool {
	for _, p := range []string{"dm-", "md", "sr", "fd", "nbd", "zd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// partNumber is the trailing number of a partition's name: sda1, nvme0n1p2,
// mmcblk0p3, loop0p1.
func partNumber(name string) int {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(name[i:])
	return n
}

// parseLsLinks reads `ls -l` lines and returns each symlink's absolute path
// and resolved target; relative targets resolve against dir.
func parseLsLinks(lines []string, dir string) map[string]string {
	out := map[string]string{}
	for _, line := range lines {
		left, target, ok := strings.Cut(line, " -> ")
		if !ok {
			continue
		}
		fields := strings.Fields(left)
		if len(fields) == 0 {
			continue
		}
		name := fields[len(fields)-1]
		if !strings.HasPrefix(name, "/") {
			name = path.Join(dir, name)
		}
		target = strings.TrimSpace(target)
		if !strings.HasPrefix(target, "/") {
			target = path.Join(path.Dir(name), target)
		}
		out[name] = path.Clean(target)
	}
	return out
}

// naturalCompare orders strings with embedded numbers numerically, so
// nvme2n1 sorts before nvme10n1 and nvme0n1p2 before nvme0n1p10.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		ad, bd := isDigit(a[0]), isDigit(b[0])
		if ad && bd {
			i, j := digitRun(a), digitRun(b)
			na, nb := strings.TrimLeft(a[:i], "0"), strings.TrimLeft(b[:j], "0")
			if len(na) != len(nb) {
				return len(na) - len(nb)
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitRun(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// normalize turns nil lists into empty ones so the JSON and template views
// always see lists.
func normalize(f *Facts) {
	if f.Interfaces == nil {
		f.Interfaces = []Interface{}
	}
	for i := range f.Interfaces {
		in := &f.Interfaces[i]
		if in.IPv4 == nil {
			in.IPv4 = []string{}
		}
		if in.IPv6 == nil {
			in.IPv6 = []string{}
		}
	}
	if f.Nameservers == nil {
		f.Nameservers = []string{}
	}
	if f.Disks == nil {
		f.Disks = []Disk{}
	}
	for i := range f.Disks {
		d := &f.Disks[i]
		if d.ByID == nil {
			d.ByID = []string{}
		}
		if d.Partitions == nil {
			d.Partitions = []Partition{}
		}
		// In partition-number order, whatever order the tool listed them in.
		sort.SliceStable(d.Partitions, func(i, j int) bool { return d.Partitions[i].Number < d.Partitions[j].Number })
	}
	if f.Mounts == nil {
		f.Mounts = []Mount{}
	}
}
