package nixosgen

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
)

// Ways to name the uplink in the installed system.
const (
	NamingMAC         = "mac"
	NamingEth0        = "eth0"
	NamingPredictable = "predictable"
)

// OVH's resolvers, used when neither the task nor the host names any.
var (
	ovhDNS4 = "213.186.33.99"
	ovhDNS6 = "2001:41d0:3:163::1"
)

// initrdModules are the disk and USB drivers OVH hardware needs at boot,
// added to what nixos-generate-config detects in case it misses some.
var initrdModules = []string{"ahci", "sd_mod", "nvme", "xhci_pci", "ehci_pci", "usbhid"}

// inputs are what the configuration is derived from besides the arguments.
type inputs struct {
	name        string // inventory name
	facts       *facts.Facts
	mounts      []mount // file systems under root, targets relative to it
	rootMounted bool
}

// system is the resolved configuration, ready to render.
type system struct {
	name             string // inventory name, for comments
	hostName, domain string
	hostID           string
	hostIDDerived    bool
	nic              nic
	ipv4             netip.Prefix
	gw4              netip.Addr
	ipv6             netip.Prefix // invalid when the server gets no IPv6
	gw6              netip.Addr
	nameservers      []string
	sshKeys          []string
	luks             []LUKSDevice
	boot             boot
	stateVersion     string
	imports          []string // rendered Nix expressions
	extra            string
	notes            []string // shown beside the result
}

type nic struct {
	naming    string
	name      string // in the installed system
	mac       string
	seen      string // as the running system names it
	predicted string
}

type boot struct {
	uefi      bool
	devices   []string // BIOS: GRUB's disks
	efiMounts []string // UEFI: EFI system partitions
	zfs       bool
	grubZFS   bool // /boot lives on ZFS, so GRUB must read it

	mirrors []mirroredBoot // BIOS: each GRUB with the /boot on its disk
	modules []string       // boot.initrd.availableKernelModules
	// controllers are the disk controllers' modules facts found that the
	// stock list lacks (a RAID controller's).
	controllers []string
}

// mirroredBoot is one entry of boot.loader.grub.mirroredBoots.
type mirroredBoot struct {
	path    string
	devices []string
}

// hasIPv6 says whether the server gets an IPv6 address.
func (s *system) hasIPv6() bool { return s.ipv6.IsValid() }

var (
	luksName     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)
	hostLabel    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$`)
	domainLabel  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	hexHostID    = regexp.MustCompile(`^[0-9a-fA-F]{8}$`)
	stateVersion = regexp.MustCompile(`^[0-9]{2}\.[0-9]{2}$`)
	ifaceName    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,14}$`)
	kernelEth    = regexp.MustCompile(`^eth[0-9]+$`)
	macAddress   = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`)
)

// Validate checks what can be checked without the host.
func Validate(a *Args) error {
	// A template over an unset inventory value renders as "": not a value.
	for _, l := range []*modkit.StringList{&a.Disks, &a.EFIMounts, &a.Nameservers, &a.Imports} {
		*l = slices.DeleteFunc(*l, func(s string) bool { return strings.TrimSpace(s) == "" })
	}
	var errs []error
	switch a.NICNaming {
	case NamingMAC, NamingEth0, NamingPredictable:
	default:
		errs = append(errs, fmt.Errorf("nic_naming %q: want mac, eth0 or predictable", a.NICNaming))
	}
	if a.NICNaming == NamingMAC && !ifaceName.MatchString(a.NICName) {
		errs = append(errs, fmt.Errorf("nic_name %q: want an interface name of at most 15 letters, digits, - or _, starting with a letter", a.NICName))
	}
	switch a.Firmware {
	case "auto", "bios", "uefi":
	default:
		errs = append(errs, fmt.Errorf("firmware %q: want bios, uefi or auto", a.Firmware))
	}
	if a.Root == "" || !strings.HasPrefix(a.Root, "/") {
		errs = append(errs, fmt.Errorf("root %q: want an absolute path", a.Root))
	}
	a.Root = path.Clean(a.Root)
	if a.HostID != "" && !hexHostID.MatchString(a.HostID) {
		errs = append(errs, fmt.Errorf("host_id %q: want 8 hexadecimal digits", a.HostID))
	}
	if !stateVersion.MatchString(a.StateVersion) {
		errs = append(errs, fmt.Errorf("state_version %q: want a NixOS release such as 26.05", a.StateVersion))
	}
	if _, err := sshKeys(a.SSHKeys); err != nil {
		errs = append(errs, err)
	}
	for _, d := range a.LUKS {
		switch {
		case !luksName.MatchString(d.Name):
			errs = append(errs, fmt.Errorf("luks: name %q: want a mapper name of letters, digits and ._+-", d.Name))
		case !strings.HasPrefix(d.Device, "/dev/"):
			errs = append(errs, fmt.Errorf("luks %s: device %q: want a /dev path", d.Name, d.Device))
		case !path.IsAbs(d.KeyFile) || path.Clean(d.KeyFile) != d.KeyFile:
			errs = append(errs, fmt.Errorf("luks %s: key_file %q: want the key's absolute path in the installed system", d.Name, d.KeyFile))
		}
	}
	for _, p := range a.Imports {
		if _, ok := nixImport(p); !ok {
			errs = append(errs, fmt.Errorf("imports: %q: want ./name.nix (beside configuration.nix), an absolute path or <nixpkgs/...>", p))
		}
	}
	for _, m := range a.EFIMounts {
		if !strings.HasPrefix(m, "/") || path.Clean(m) != m {
			errs = append(errs, fmt.Errorf("efi_mounts: %q: want a clean absolute path inside the new system, such as /boot", m))
		}
	}
	if err := lintLockout(a.Extra); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// sshKeys splits and validates root's keys: one OpenSSH public key per
// line, options allowed, blank lines and comments skipped.
func sshKeys(list []string) ([]string, error) {
	var keys []string
	for _, entry := range list {
		for _, line := range strings.Split(entry, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err != nil {
				return nil, fmt.Errorf("ssh_keys: %q is not an OpenSSH public key (%v); give the content of a .pub file", abbreviate(line), err)
			}
			keys = append(keys, line)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("ssh_keys: no public key: the installed server would accept no login, give at least one")
	}
	return keys, nil
}

func abbreviate(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// resolve derives the system from the arguments, the facts and the mounts,
// refusing values that disagree with the host or a configuration the
// server could not be reached with.
func resolve(a Args, in inputs) (*system, error) {
	f := in.facts
	if f == nil {
		f = &facts.Facts{}
	}
	s := &system{name: in.name, stateVersion: a.StateVersion, extra: a.Extra}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	add(s.resolveNames(a, in.name))
	s.luks = a.LUKS
	keys, err := sshKeys(a.SSHKeys)
	add(err)
	s.sshKeys = keys
	for _, p := range a.Imports {
		expr, _ := nixImport(p)
		s.imports = append(s.imports, expr)
	}

	iface, err := uplinkFacts(a, f)
	add(err)
	add(s.resolveNIC(a, f, iface))
	add(s.resolveIPv4(a, f, iface))
	add(s.resolveIPv6(a, f, iface))
	add(s.resolveNameservers(a, f))
	add(s.resolveBoot(a, f, in))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *system) resolveNames(a Args, inventoryName string) error {
	name := a.Hostname
	if name == "" {
		name = inventoryName
		if ip, err := netip.ParseAddr(name); err == nil {
			name = "ip-" + strings.NewReplacer(".", "-", ":", "-").Replace(ip.String())
		}
	}
	host, domain, _ := strings.Cut(strings.TrimSuffix(name, "."), ".")
	var errs []error
	if !hostLabel.MatchString(host) {
		errs = append(errs, fmt.Errorf("hostname %q: networking.hostName must be letters, digits, - and _ (at most 63), starting and ending with a letter or digit; set hostname", host))
	}
	if domain != "" {
		for _, l := range strings.Split(domain, ".") {
			if !domainLabel.MatchString(l) {
				errs = append(errs, fmt.Errorf("hostname %q: domain %q is not a valid domain name", name, domain))
				break
			}
		}
	}
	s.hostName, s.domain = host, domain

	s.hostID = strings.ToLower(a.HostID)
	if s.hostID == "" {
		s.hostID, s.hostIDDerived = deriveHostID(inventoryName), true
	}
	return errors.Join(errs...)
}

// deriveHostID is the first 8 hex digits of sha256(name) that are not all
// zero (ZFS reads a zero host id as none): the same on every run, and
// reproducible with `printf %s NAME | sha256sum | cut -c1-8`. The machine-id
// would not do: rescue and installer make up a new one at every boot.
func deriveHostID(name string) string {
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:])
	for i := 0; i+8 <= len(h); i += 8 {
		if h[i:i+8] != "00000000" {
			return h[i : i+8]
		}
	}
	return "8425e349" // the nixos-images installer's; unreachable in practice
}

// uplinkFacts finds the running system's uplink: the named interface or the
// one of the default route. Nil when facts know no interface at all.
func uplinkFacts(a Args, f *facts.Facts) (*facts.Interface, error) {
	if a.Interface != "" {
		if i := f.Interface(a.Interface); i != nil {
			return i, nil
		}
		if len(f.Interfaces) == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("interface %q: the host has no such interface (it has %s)", a.Interface, interfaceNames(f))
	}
	if i := f.PrimaryInterface(); i != nil {
		return i, nil
	}
	var withAddr []*facts.Interface
	for i := range f.Interfaces {
		if len(f.Interfaces[i].IPv4) > 0 {
			withAddr = append(withAddr, &f.Interfaces[i])
		}
	}
	if len(withAddr) == 1 {
		return withAddr[0], nil
	}
	if len(f.Interfaces) == 0 {
		return nil, nil
	}
	return nil, fmt.Errorf("the host has no default route to tell its uplink among %s: set interface", interfaceNames(f))
}

func interfaceNames(f *facts.Facts) string {
	var names []string
	for _, i := range f.Interfaces {
		names = append(names, i.Name)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func (s *system) resolveNIC(a Args, f *facts.Facts, iface *facts.Interface) error {
	n := nic{naming: a.NICNaming}
	mac := strings.ToLower(strings.TrimSpace(a.MAC))
	if iface != nil {
		n.seen = iface.Name
		n.predicted = predictedName(iface)
		factsMAC := strings.ToLower(iface.MAC)
		switch {
		case mac == "":
			mac = factsMAC
		case factsMAC != "" && mac != factsMAC:
			return fmt.Errorf("mac %s (from the task) disagrees with the host: %s has %s; fix the inventory or leave mac empty to use the host's", mac, iface.Name, factsMAC)
		}
	}
	if mac != "" && !macAddress.MatchString(mac) {
		return fmt.Errorf("mac %q: want six hex bytes separated by colons", mac)
	}
	n.mac = mac

	physical := 0
	for _, i := range f.Interfaces {
		if i.MAC != "" && i.Driver != "" {
			physical++
		}
	}
	switch n.naming {
	case NamingMAC:
		if mac == "" {
			return fmt.Errorf("nic_naming mac needs the uplink's MAC address: facts have none for %s; set mac, or use nic_naming: eth0", orUnknown(n.seen))
		}
		n.name = a.NICName
	case NamingEth0:
		n.name = "eth0"
		if kernelEth.MatchString(n.seen) {
			n.name = n.seen
		}
		if physical > 1 {
			s.notes = append(s.notes, fmt.Sprintf("the host has %d NICs: their kernel names (ethN) may swap between boots; nic_naming: mac pins the uplink by its MAC", physical))
		}
	case NamingPredictable:
		n.name = n.predicted
		if n.name == "" {
			return fmt.Errorf("nic_naming predictable: facts have no predicted name for %s (no udev on the running system?); use nic_naming: mac", orUnknown(n.seen))
		}
	}
	s.nic = n
	return nil
}

func orUnknown(name string) string {
	if name == "" {
		return "the uplink"
	}
	return name
}

// predictedName is the name udev's net_id gives the NIC with predictable
// names on, as systemd picks it: onboard, then slot, then path.
func predictedName(i *facts.Interface) string {
	for _, n := range []string{i.PredictedName, i.NetNames.Onboard, i.NetNames.Slot, i.NetNames.Path} {
		if n != "" {
			return n
		}
	}
	if strings.HasPrefix(i.Name, "en") {
		return i.Name // already running with predictable names
	}
	return ""
}

func factsPrefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parseAddress reads address/prefix; a bare address takes its prefix from
// the host's addresses.
func parseAddress(arg, value string, known []netip.Prefix) (netip.Prefix, error) {
	if strings.Contains(value, "/") {
		p, err := netip.ParsePrefix(value)
		if err != nil {
			return p, fmt.Errorf("%s %q: want address/prefix: %w", arg, value, err)
		}
		return p, nil
	}
	addr, err := netip.ParseAddr(value)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s %q: want address/prefix such as 203.0.113.10/24", arg, value)
	}
	for _, k := range known {
		if k.Addr() == addr {
			return k, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("%s %q has no prefix length and the host does not have this address: write it as address/prefix", arg, value)
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

func (s *system) resolveIPv4(a Args, f *facts.Facts, iface *facts.Interface) error {
	var known []netip.Prefix
	ifName := "the uplink"
	if iface != nil {
		for _, p := range factsPrefixes(iface.IPv4) {
			if p.Addr().Is4() {
				known = append(known, p)
			}
		}
		ifName = iface.Name
	}
	value := strings.TrimSpace(a.IPv4)
	switch {
	case value == "" && len(known) == 0:
		return fmt.Errorf("ipv4: %s has no IPv4 address in facts; set ipv4 (address/prefix)", ifName)
	case value == "":
		s.ipv4 = known[0]
	default:
		p, err := parseAddress("ipv4", value, known)
		if err != nil {
			return err
		}
		if !p.Addr().Is4() {
			return fmt.Errorf("ipv4 %q is not an IPv4 address", value)
		}
		if len(known) > 0 && !slices.Contains(known, p) {
			return fmt.Errorf("ipv4 %s (from the task) disagrees with the host: %s has %s; fix the inventory or leave ipv4 empty to use the host's", p, ifName, joinPrefixes(known))
		}
		s.ipv4 = p
	}

	var factsGW netip.Addr
	if iface != nil && (f.Gateway4Interface == "" || f.Gateway4Interface == iface.Name) {
		factsGW, _ = netip.ParseAddr(f.Gateway4)
	}
	value = strings.TrimSpace(a.IPv4Gateway)
	switch {
	case value == "" && !factsGW.IsValid():
		return fmt.Errorf("ipv4_gateway: the host has no IPv4 default route via %s; set ipv4_gateway (on OVH, the address ending in .254 of the /24)", ifName)
	case value == "":
		s.gw4 = factsGW
	default:
		gw, err := netip.ParseAddr(value)
		if err != nil || !gw.Is4() {
			return fmt.Errorf("ipv4_gateway %q is not an IPv4 address", value)
		}
		if factsGW.IsValid() && gw != factsGW {
			return fmt.Errorf("ipv4_gateway %s (from the task) disagrees with the host: its default route is via %s; fix the inventory or leave ipv4_gateway empty", gw, factsGW)
		}
		s.gw4 = gw
	}
	if s.gw4 == s.ipv4.Addr() {
		return fmt.Errorf("ipv4_gateway %s is the server's own address", s.gw4)
	}
	return nil
}

// ovhGateway6 is OVH's IPv6 gateway for a block: the /56 with ff in the
// 8th byte and ff:ff:ff:ff:ff after it (2001:db8:1:10::/64 has
// 2001:db8:1:ff:ff:ff:ff:ff).
func ovhGateway6(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As16()
	b[7] = 0xff
	for i := 8; i < 16; i += 2 {
		b[i], b[i+1] = 0, 0xff
	}
	return netip.AddrFrom16(b)
}

func (s *system) resolveIPv6(a Args, f *facts.Facts, iface *facts.Interface) error {
	value := strings.TrimSpace(a.IPv6)
	if strings.EqualFold(value, "none") {
		return nil
	}
	var known []netip.Prefix
	ifName := "the uplink"
	if iface != nil {
		for _, p := range factsPrefixes(iface.IPv6) {
			if p.Addr().Is6() && !p.Addr().IsLinkLocalUnicast() {
				known = append(known, p)
			}
		}
		ifName = iface.Name
	}
	switch {
	case value == "" && len(known) == 0:
		if a.IPv6Gateway != "" {
			return fmt.Errorf("ipv6_gateway %s is set but %s has no IPv6 address in facts: set ipv6 (address/prefix), or ipv6: none", a.IPv6Gateway, ifName)
		}
		return nil // no IPv6: the server answers over IPv4
	case value == "":
		s.ipv6 = known[0]
	default:
		p, err := parseAddress("ipv6", value, known)
		if err != nil {
			return err
		}
		if !p.Addr().Is6() || p.Addr().Is4In6() {
			return fmt.Errorf("ipv6 %q is not an IPv6 address", value)
		}
		if len(known) > 0 && !slices.Contains(known, p) {
			return fmt.Errorf("ipv6 %s (from the task) disagrees with the host: %s has %s; fix the inventory or leave ipv6 empty to use the host's", p, ifName, joinPrefixes(known))
		}
		s.ipv6 = p
	}

	var factsGW netip.Addr
	if iface != nil && (f.Gateway6Interface == "" || f.Gateway6Interface == iface.Name) {
		factsGW, _ = netip.ParseAddr(f.Gateway6)
	}
	value = strings.TrimSpace(a.IPv6Gateway)
	switch {
	case value == "" && !factsGW.IsValid():
		return fmt.Errorf("ipv6_gateway: ipv6 %s needs a gateway and the host has no IPv6 default route; set ipv6_gateway (on OVH it is %s for this block; elsewhere often fe80::1), or ipv6: none", s.ipv6, ovhGateway6(s.ipv6))
	case value == "":
		s.gw6 = factsGW
	default:
		gw, err := netip.ParseAddr(value)
		if err != nil || !gw.Is6() || gw.Is4In6() {
			return fmt.Errorf("ipv6_gateway %q is not an IPv6 address", value)
		}
		// A link-local route in rescue (fe80::1) and OVH's global gateway
		// both work, so only two global gateways can disagree.
		if factsGW.IsValid() && !factsGW.IsLinkLocalUnicast() && !gw.IsLinkLocalUnicast() && gw.WithZone("") != factsGW.WithZone("") {
			return fmt.Errorf("ipv6_gateway %s (from the task) disagrees with the host: its IPv6 default route is via %s; fix the inventory or leave ipv6_gateway empty", gw, factsGW)
		}
		s.gw6 = gw
	}
	s.gw6 = s.gw6.WithZone("")
	if s.gw6 == s.ipv6.Addr() {
		return fmt.Errorf("ipv6_gateway %s is the server's own address", s.gw6)
	}
	return nil
}

// needsRoute says whether a gateway outside the server's prefix needs an
// explicit on-link host route (a link-local gateway is on the link anyway).
func needsRoute(p netip.Prefix, gw netip.Addr) bool {
	return gw.IsValid() && !gw.IsLinkLocalUnicast() && !p.Masked().Contains(gw)
}

func (s *system) resolveNameservers(a Args, f *facts.Facts) error {
	list := []string(a.Nameservers)
	fromHost := false
	if len(list) == 0 {
		fromHost = true
		for _, ns := range f.Nameservers {
			if addr, err := netip.ParseAddr(ns); err == nil && !addr.IsLoopback() && addr.Zone() == "" {
				list = append(list, addr.String())
			}
		}
	}
	if len(list) == 0 {
		list = []string{ovhDNS4}
		if s.hasIPv6() {
			list = append(list, ovhDNS6)
		}
	}
	for _, ns := range list {
		addr, err := netip.ParseAddr(ns)
		if err != nil {
			return fmt.Errorf("nameservers: %q is not an IP address", ns)
		}
		if fromHost && addr.Is6() && !s.hasIPv6() {
			continue // unreachable without IPv6
		}
		s.nameservers = append(s.nameservers, addr.String())
	}
	if len(s.nameservers) == 0 {
		s.nameservers = []string{ovhDNS4}
	}
	return nil
}

func (s *system) resolveBoot(a Args, f *facts.Facts, in inputs) error {
	var errs []error
	firmware := a.Firmware
	if firmware == "auto" {
		firmware = f.Firmware
		if firmware != "bios" && firmware != "uefi" {
			return errors.New("firmware: facts do not say how the host boots; set firmware: bios or uefi")
		}
	}
	s.boot.uefi = firmware == "uefi"

	zfsMounted := ""
	for _, m := range in.mounts {
		if m.FSType == "zfs" && zfsMounted == "" {
			zfsMounted = fmt.Sprintf("%s at %s", m.Device, m.Target)
		}
	}
	switch {
	case !a.ZFS.Set:
		s.boot.zfs = zfsMounted != ""
	case !a.ZFS.Value && zfsMounted != "":
		errs = append(errs, fmt.Errorf("zfs: false, but the layout mounts the ZFS dataset %s under %s: the system would not mount it at boot; set zfs: true or auto", zfsMounted, a.Root))
	default:
		s.boot.zfs = a.ZFS.Value
	}
	if m, ok := mountHolding(in.mounts, "/boot"); ok && m.FSType == "zfs" {
		s.boot.grubZFS = true
		s.notes = append(s.notes, fmt.Sprintf("/boot lives on the ZFS dataset %s: GRUB must read the pool, which needs it created with -o compatibility=grub2; a small ext4 or vfat /boot is safer", m.Device))
	}

	s.boot.modules = slices.Clone(initrdModules)
	for _, d := range f.Disks {
		driver := moduleName(d.Driver)
		// A transport's own modules (virtio_pci) are in NixOS's initrd
		// by default: only another controller's needs saying.
		if driver != "" && !slices.Contains(s.boot.modules, driver) && !slices.Contains(transportModules[diskTransport(d)], driver) {
			s.boot.modules = append(s.boot.modules, driver)
			s.boot.controllers = append(s.boot.controllers, driver)
		}
	}

	if s.boot.uefi {
		errs = append(errs, s.resolveEFI(a, in))
	} else {
		errs = append(errs, s.resolveGrubDisks(a, f, in))
		s.resolveMirrors(f, in)
	}
	if !in.rootMounted {
		s.notes = append(s.notes, fmt.Sprintf("nothing is mounted at %s yet: the layout checks (ZFS, EFI system partition, GRUB's disks) run once it is", a.Root))
	}
	return errors.Join(errs...)
}

func (s *system) resolveEFI(a Args, in inputs) error {
	var vfat []string
	for _, m := range in.mounts {
		if m.FSType == "vfat" && (m.Target == "/boot" || strings.HasPrefix(m.Target, "/boot")) {
			vfat = append(vfat, m.Target)
		}
	}
	mounts := []string(a.EFIMounts)
	switch {
	case len(mounts) > 0:
	case len(vfat) > 0:
		mounts = vfat
	default:
		mounts = []string{"/boot"}
	}
	s.boot.efiMounts = mounts
	if !in.rootMounted {
		return nil
	}
	var errs []error
	for _, mp := range mounts {
		m, ok := mountAt(in.mounts, mp)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("this server boots in UEFI mode, but no EFI system partition is mounted at %s (vfat file systems under it: %s): mount it, or set efi_mounts", path.Join(a.Root, mp), orNone(vfat)))
		case m.FSType != "vfat":
			errs = append(errs, fmt.Errorf("this server boots in UEFI mode, but %s holds %s (%s), not a vfat EFI system partition: fix the layout, or set efi_mounts", path.Join(a.Root, mp), m.Device, m.FSType))
		}
	}
	return errors.Join(errs...)
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

func (s *system) resolveGrubDisks(a Args, f *facts.Facts, in inputs) error {
	disks := []string(a.Disks)
	if len(disks) == 0 {
		disks = layoutDisks(f, in.mounts)
	}
	if len(disks) == 0 {
		for _, d := range f.Disks {
			disks = append(disks, d.Path)
		}
	}
	if len(disks) == 0 {
		return errors.New("disks: facts list no disk to install GRUB on; set disks")
	}
	var errs []error
	for _, name := range disks {
		if len(f.Disks) == 0 {
			s.boot.devices = append(s.boot.devices, name)
			continue
		}
		d, ok := f.Disk(name)
		if !ok {
			errs = append(errs, fmt.Errorf("disks: the host has no disk %s (it has %s)", name, diskNames(f)))
			continue
		}
		dev := name
		if a.StableNames {
			dev = stableDiskName(d)
		}
		if !slices.Contains(s.boot.devices, dev) {
			s.boot.devices = append(s.boot.devices, dev)
		}
	}
	return errors.Join(errs...)
}

func diskNames(f *facts.Facts) string {
	var names []string
	for _, d := range f.Disks {
		names = append(names, d.Path)
	}
	return orNone(names)
}

// stableDiskName prefers a by-id link naming the model and serial (ata-,
// nvme-, scsi-, virtio-) to the wwn and eui ones, and any of them to the
// kernel name, which may change between boots.
func stableDiskName(d *facts.Disk) string {
	best := ""
	for _, link := range d.ByID {
		base := path.Base(link)
		generic := strings.HasPrefix(base, "wwn-") || strings.HasPrefix(base, "nvme-eui.") || strings.HasPrefix(base, "nvme-nvme.")
		switch {
		case best == "":
			best = link
		case !generic && isGenericID(path.Base(best)):
			best = link
		}
	}
	if best == "" {
		return d.Path
	}
	return best
}

func isGenericID(base string) bool {
	return strings.HasPrefix(base, "wwn-") || strings.HasPrefix(base, "nvme-eui.") || strings.HasPrefix(base, "nvme-nvme.")
}

// layoutDisks are the disks holding the block devices mounted under root.
func layoutDisks(f *facts.Facts, mounts []mount) []string {
	var out []string
	for _, m := range mounts {
		if disk := diskOfMount(f, m); disk != "" && !slices.Contains(out, disk) {
			out = append(out, disk)
		}
	}
	slices.Sort(out)
	return out
}

// diskOfMount is the facts' path of the disk holding a mounted block
// device, "" when it is not on one (a dataset, a mapper device).
func diskOfMount(f *facts.Facts, m mount) string {
	if !strings.HasPrefix(m.Device, "/dev/") {
		return ""
	}
	disk := ""
	if d, ok := f.Disk(m.Device); ok {
		disk = d.Path // a file system on the whole disk
	}
	for _, d := range f.Disks {
		for _, p := range d.Partitions {
			if p.Path == m.Device {
				disk = d.Path
			}
		}
	}
	if disk == "" {
		if d, ok := f.Disk(partitionParent(m.Device)); ok {
			disk = d.Path
		}
	}
	return disk
}

var bootMount = regexp.MustCompile(`^/boot(-[0-9]+)?$`)

// resolveMirrors gives each GRUB the /boot on its own disk when the layout
// mounts one per disk (/boot, /boot-2, ...): GRUB's mirrored boots. A GRUB
// reading the /boot of another disk would not boot once that disk is lost.
func (s *system) resolveMirrors(f *facts.Facts, in inputs) {
	var boots []mount
	for _, m := range in.mounts {
		if bootMount.MatchString(m.Target) && m.FSType != "zfs" {
			boots = append(boots, m)
		}
	}
	if len(boots) < 2 || len(f.Disks) == 0 {
		return
	}
	slices.SortFunc(boots, func(a, b mount) int { return naturalCompareTargets(a.Target, b.Target) })
	mirrors := make([]mirroredBoot, len(boots))
	for i, b := range boots {
		mirrors[i].path = b.Target
	}
	if diskOfMount(f, boots[0]) == "" && len(boots) == len(s.boot.devices) {
		// Not made yet (nixbook generate, the stock layout by label): the
		// stock layout puts /boot on the first disk, /boot-2 on the second.
		for i := range mirrors {
			mirrors[i].devices = []string{s.boot.devices[i]}
		}
		s.boot.mirrors = mirrors
		return
	}
	for _, dev := range s.boot.devices {
		d, ok := f.Disk(dev)
		if !ok {
			return
		}
		at := 0 // a disk without a /boot of its own reads the first
		for i, b := range boots {
			if diskOfMount(f, b) == d.Path {
				at = i
			}
		}
		mirrors[at].devices = append(mirrors[at].devices, dev)
	}
	for _, m := range mirrors {
		if len(m.devices) == 0 {
			return // a /boot no GRUB reads: the layout is not one per disk
		}
	}
	s.boot.mirrors = mirrors
}

// naturalCompareTargets orders /boot before /boot-2 before /boot-10.
func naturalCompareTargets(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

var (
	nvmePart  = regexp.MustCompile(`^(.*[0-9])p[0-9]+$`)
	plainPart = regexp.MustCompile(`^(.*[a-z])[0-9]+$`)
	byIDPart  = regexp.MustCompile(`^(/dev/disk/by-id/.*)-part[0-9]+$`)
)

// partitionParent names the disk of a partition node: sda1 → sda,
// nvme0n1p2 → nvme0n1, by-id …-part2 → the by-id disk.
func partitionParent(dev string) string {
	for _, re := range []*regexp.Regexp{byIDPart, nvmePart, plainPart} {
		if m := re.FindStringSubmatch(dev); m != nil {
			return m[1]
		}
	}
	return dev
}
