package nixeval

import (
	"fmt"
	"maps"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Bootable returns the reasons a real server would not come back on the
// network with this configuration installed: its uplink would carry the
// wrong name or addresses, its gateways would be unreachable, nobody could
// log in over SSH, GRUB is not on a disk the firmware boots, or its ZFS
// pool would not import; and the reasons its IPv6 would not work. grubRecord
// is what nixos-install recorded in /boot/grub/nixbook-sim-devices. No
// reasons means the server answers SSH over IPv4 and IPv6.
func Bootable(h Host, in *Installed, grubRecord []string) []string {
	down, v6 := Check(h, in, grubRecord)
	return append(down, v6.Problems...)
}

// IPv6 is what a configuration makes of the server's IPv6.
type IPv6 struct {
	// Configured: the uplink gets an IPv6 address.
	Configured bool
	// Own: the address is the server's own, with its prefix.
	Own bool
	// Gateway is the default route's gateway the configuration sets, when
	// the kernel would take it (its address reachable on the link); it may
	// be the wrong one.
	Gateway netip.Addr
	// Problems are why IPv6 would not work; a server with IPv6 problems
	// still answers over IPv4.
	Problems []string
}

// Check returns the reasons a server would not come back on the network at
// all (see Bootable), and what becomes of its IPv6, which a server whose
// IPv4 works answers without.
func Check(h Host, in *Installed, grubRecord []string) (down []string, v6 IPv6) {
	if in == nil {
		return []string{"the configuration could not be evaluated"}, v6
	}
	var r reasons
	up := uplinkOf(h, in)
	checkIPv4(&r, h, in, up)
	v6 = checkIPv6(h, in, up)
	checkSSH(&r, in)
	checkBoot(&r, h, in, grubRecord)
	checkFileSystems(&r, h, in)
	checkInitrd(&r, h, in)
	checkZFS(&r, h, in)
	return r, v6
}

type reasons []string

func (r *reasons) add(format string, args ...any) {
	*r = append(*r, fmt.Sprintf(format, args...))
}

// gateway is a default route and whether the configuration makes its
// next hop reachable on the link whatever the prefix.
type gateway struct {
	addr   netip.Addr
	onLink bool
	source string
}

// uplink is everything the configuration gives the server's one NIC.
type uplink struct {
	name, why    string
	v4, v6       []netip.Prefix
	onLink       []netip.Prefix // routes without a next hop
	gw4, gw6     []gateway
	dhcp         bool
	elsewhere    []string // where addresses went that the NIC will not get
	gwElsewhere  []string // gateway options bound to another interface
	networkdOff  []string // networkd units that would have applied
	invalidAddrs []string
}

func uplinkOf(h Host, in *Installed) uplink {
	up := uplink{name: h.NIC, why: "its predictable name"}
	if up.name == "" {
		up.name = "eth0"
	}
	if !in.UsePredictableNames {
		up.name, up.why = "eth0", "networking.usePredictableInterfaceNames = false"
	}
	mac := strings.ToLower(h.MAC)
	for _, rn := range in.Renames {
		if mac != "" && rn.MAC == mac {
			up.name, up.why = rn.Name, "renamed by MAC in "+rn.Source
		}
	}

	if iface, ok := in.Interfaces[up.name]; ok {
		up.v4 = append(up.v4, prefixes(&up, iface.IPv4)...)
		up.v6 = append(up.v6, prefixes(&up, iface.IPv6)...)
		for _, rt := range append(slices.Clone(iface.Routes4), iface.Routes6...) {
			if p, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", rt.Address, rt.PrefixLength)); err == nil && rt.Via == "" {
				up.onLink = append(up.onLink, p.Masked())
			}
		}
		if iface.UseDHCP != nil {
			up.dhcp = *iface.UseDHCP
		} else {
			up.dhcp = in.UseDHCP
		}
	} else {
		up.dhcp = in.UseDHCP
	}
	for name, iface := range in.Interfaces {
		if name != up.name && len(iface.IPv4)+len(iface.IPv6) > 0 {
			up.elsewhere = append(up.elsewhere, "networking.interfaces."+name)
		}
	}
	addGateway := func(list *[]gateway, addr, iface, option string) {
		if addr == "" {
			return
		}
		a, err := netip.ParseAddr(addr)
		if err != nil {
			up.invalidAddrs = append(up.invalidAddrs, fmt.Sprintf("%s = %q", option, addr))
			return
		}
		if iface != "" && iface != up.name {
			up.gwElsewhere = append(up.gwElsewhere, fmt.Sprintf("%s.interface is %q, but the server's NIC will be named %s (%s)", option, iface, up.name, up.why))
			return
		}
		*list = append(*list, gateway{addr: a, onLink: iface != "", source: option})
	}
	addGateway(&up.gw4, in.DefaultGateway, in.DefaultGatewayInterface, "networking.defaultGateway")
	addGateway(&up.gw6, in.DefaultGateway6, in.DefaultGateway6Interface, "networking.defaultGateway6")

	for unit, n := range in.Networks {
		if !n.matches(up.name, mac) {
			if len(n.Addresses) > 0 {
				up.elsewhere = append(up.elsewhere, "systemd.network.networks."+unit)
			}
			continue
		}
		if !in.Networkd {
			up.networkdOff = append(up.networkdOff, "systemd.network.networks."+unit)
			continue
		}
		for _, cidr := range n.Addresses {
			if p, err := netip.ParsePrefix(cidr); err == nil {
				if p.Addr().Is4() {
					up.v4 = append(up.v4, p)
				} else {
					up.v6 = append(up.v6, p)
				}
			} else {
				up.invalidAddrs = append(up.invalidAddrs, fmt.Sprintf("systemd.network.networks.%s address %q", unit, cidr))
			}
		}
		for _, g := range n.Gateways {
			addNetworkdGateway(&up, g, false, "systemd.network.networks."+unit)
		}
		for _, rt := range n.Routes {
			if rt.Gateway != "" {
				addNetworkdGateway(&up, rt.Gateway, rt.GatewayOnLink, "systemd.network.networks."+unit)
			} else if p, err := netip.ParsePrefix(rt.Destination); err == nil {
				up.onLink = append(up.onLink, p.Masked())
			} else if a, err := netip.ParseAddr(rt.Destination); err == nil {
				up.onLink = append(up.onLink, netip.PrefixFrom(a, a.BitLen()))
			}
		}
		switch n.DHCP {
		case "yes", "ipv4", "true", "both":
			up.dhcp = true
		}
	}
	slices.Sort(up.elsewhere)
	slices.Sort(up.networkdOff)
	return up
}

func addNetworkdGateway(up *uplink, addr string, onLink bool, source string) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		up.invalidAddrs = append(up.invalidAddrs, fmt.Sprintf("%s gateway %q", source, addr))
		return
	}
	g := gateway{addr: a, onLink: onLink, source: source}
	if a.Is4() {
		up.gw4 = append(up.gw4, g)
	} else {
		up.gw6 = append(up.gw6, g)
	}
}

func prefixes(up *uplink, addrs []Address) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range addrs {
		p, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", a.Address, a.PrefixLength))
		if err != nil {
			up.invalidAddrs = append(up.invalidAddrs, fmt.Sprintf("%s/%d on %s", a.Address, a.PrefixLength, up.name))
			continue
		}
		out = append(out, p)
	}
	return out
}

func (n NetworkdNetwork) matches(name, mac string) bool {
	for _, glob := range n.MatchName {
		if ok, _ := path.Match(glob, name); ok {
			return true
		}
	}
	return mac != "" && slices.Contains(n.MatchMAC, mac)
}

// reachable says whether the kernel could send to gw: it is inside an
// address's prefix, or a route or the gateway option puts it on the link.
func (up uplink) reachable(g gateway, addrs []netip.Prefix) bool {
	if g.onLink {
		return true
	}
	for _, p := range append(slices.Clone(addrs), up.onLink...) {
		if p.Contains(g.addr) {
			return true
		}
	}
	return false
}

func checkIPv4(r *reasons, h Host, in *Installed, up uplink) {
	for _, bad := range up.invalidAddrs {
		r.add("%s is not a valid address", bad)
	}
	for _, msg := range up.gwElsewhere {
		r.add("%s", msg)
	}
	host, err := netip.ParsePrefix(h.IPv4CIDR)
	if err != nil {
		return
	}
	var mine *netip.Prefix
	for i, p := range up.v4 {
		if p.Addr() == host.Addr() {
			mine = &up.v4[i]
		}
	}
	switch {
	case mine != nil:
		if mine.Bits() != host.Bits() {
			r.add("IPv4 address %s on %s has prefixLength %d, but the network is /%d", host.Addr(), up.name, mine.Bits(), host.Bits())
		}
	case len(up.v4) > 0:
		r.add("IPv4 address %s on %s is not this server's address %s", joinPrefixes(up.v4), up.name, host)
	case len(up.elsewhere) > 0:
		r.add("the addresses are set on %s, but the server's NIC will be named %s (%s)", strings.Join(up.elsewhere, " and "), up.name, up.why)
	case len(up.networkdOff) > 0:
		r.add("%s would configure %s, but systemd.network.enable is not true", strings.Join(up.networkdOff, " and "), up.name)
	case up.dhcp:
		r.add("IPv4 on %s is left to DHCP, which this network does not serve: set %s/%d statically", up.name, host.Addr(), host.Bits())
	default:
		r.add("no IPv4 address on %s: this server's address is %s", up.name, host)
	}

	gw, err := netip.ParseAddr(h.IPv4Gateway)
	if err != nil || mine == nil {
		return // without its address the gateway is moot
	}
	if len(up.gw4) == 0 {
		r.add("no IPv4 default gateway: set networking.defaultGateway = %q", gw)
		return
	}
	i := slices.IndexFunc(up.gw4, func(g gateway) bool { return g.addr == gw })
	if i < 0 {
		r.add("IPv4 default gateway %s (%s) is not this network's gateway %s", up.gw4[0].addr, up.gw4[0].source, gw)
		return
	}
	if !up.reachable(up.gw4[i], up.v4) {
		r.add("IPv4 gateway %s is outside %s and has no on-link route: set networking.defaultGateway.interface = %q", gw, joinPrefixes(up.v4), up.name)
	}
}

func checkIPv6(h Host, in *Installed, up uplink) IPv6 {
	var v6 IPv6
	r := (*reasons)(&v6.Problems)
	host, err := netip.ParsePrefix(h.IPv6CIDR)
	if err != nil || len(up.v6) == 0 {
		return v6 // IPv6 left unconfigured still answers over IPv4
	}
	v6.Configured = true
	var mine *netip.Prefix
	for i, p := range up.v6 {
		if p.Addr() == host.Addr() {
			mine = &up.v6[i]
		}
	}
	switch {
	case mine == nil:
		r.add("IPv6 address %s on %s is not this server's address %s", joinPrefixes(up.v6), up.name, host)
	case mine.Bits() != host.Bits():
		r.add("IPv6 address %s on %s has prefixLength %d, but the server's block is /%d", host.Addr(), up.name, mine.Bits(), host.Bits())
	default:
		v6.Own = true
	}
	if len(up.gw6) > 0 && up.reachable(up.gw6[0], up.v6) {
		v6.Gateway = up.gw6[0].addr
	}
	gw, err := netip.ParseAddr(h.IPv6Gateway)
	if err != nil {
		return v6
	}
	if len(up.gw6) == 0 {
		r.add("no IPv6 default gateway (networking.defaultGateway6): nothing beyond the /64 is reachable over IPv6; this server's gateway is %s", gw)
		return v6
	}
	i := slices.IndexFunc(up.gw6, func(g gateway) bool { return g.addr == gw })
	if i < 0 {
		r.add("IPv6 default gateway %s (%s) is not this server's gateway %s", up.gw6[0].addr, up.gw6[0].source, gw)
		return v6
	}
	if !up.reachable(up.gw6[i], up.v6) {
		r.add("IPv6 gateway %s is outside %s and has no on-link route: set networking.defaultGateway6.interface = %q or add networking.interfaces.%s.ipv6.routes = [ { address = %q; prefixLength = 128; } ]",
			gw, joinPrefixes(up.v6), up.name, up.name, gw)
	}
	return v6
}

func checkSSH(r *reasons, in *Installed) {
	if !in.SSHD {
		r.add("services.openssh.enable is not true: no SSH server runs")
		return
	}
	if len(in.RootKeys)+len(in.RootKeyFiles) == 0 {
		r.add("users.users.root.openssh.authorizedKeys.keys is empty: root cannot log in with a key")
	}
	if in.PermitRootLogin == "no" {
		r.add("services.openssh.settings.PermitRootLogin = \"no\": root cannot log in")
	}
	if len(in.SSHPorts) > 0 && !slices.Contains(in.SSHPorts, 22) {
		r.add("sshd listens on port %v, not 22", in.SSHPorts)
	}
	if in.Firewall && !in.SSHOpenFirewall && !slices.Contains(in.AllowedTCPPorts, 22) {
		r.add("the firewall blocks port 22: services.openssh.openFirewall = false and 22 is not in networking.firewall.allowedTCPPorts")
	}
}

func checkBoot(r *reasons, h Host, in *Installed, grubRecord []string) {
	if _, ok := in.FileSystems["/"]; !ok {
		r.add("fileSystems.\"/\" is not set: the system has no root file system")
	}
	var devices []string
	nodev := false
	for _, d := range grubRecord {
		d = strings.TrimSpace(d)
		switch d {
		case "":
		case "nodev":
			nodev = true
		default:
			devices = append(devices, d)
		}
	}
	if len(devices) == 0 && !nodev {
		r.add("no boot loader was installed on the server's disks: no /boot on them holds nixos-install's record of GRUB devices")
		return
	}
	if h.UEFI {
		// Which loader the firmware starts is the EFI system partitions'
		// and efiBootloaderPath's business, checked at boot; GRUB must at
		// least have been built for EFI.
		if in.GrubEnabled && !in.SystemdBoot && !in.EFISupport {
			r.add("GRUB was installed for legacy BIOS only (boot.loader.grub.efiSupport is not true), but this server boots in UEFI mode: set boot.loader.grub.efiSupport = true and efiInstallAsRemovable = true, with an EFI system partition at /boot")
		}
		return
	}
	if len(devices) == 0 {
		r.add("GRUB was installed for EFI only (device \"nodev\"), but this server boots in legacy BIOS mode: set boot.loader.grub.devices to its disks")
		return
	}
	for _, d := range devices {
		if slices.Contains(h.Disks, d) || slices.Contains(h.Disks, h.DiskAliases[d]) {
			return
		}
	}
	r.add("GRUB was installed on %s, none of which is a disk of this server (%s)", strings.Join(devices, ", "), strings.Join(h.Disks, ", "))
}

// checkFileSystems finds the file systems whose device the server lacks
// (a disk lost, a label that names nothing): systemd waits for each, and
// without "nofail" the boot ends in emergency mode, off the network.
func checkFileSystems(r *reasons, h Host, in *Installed) {
	if h.Devices == nil {
		return
	}
	for _, mount := range slices.Sorted(maps.Keys(in.FileSystems)) {
		fsys := in.FileSystems[mount]
		dev := fsys.Device
		if !strings.HasPrefix(dev, "/dev/disk/") && !kernelDisk.MatchString(dev) {
			continue // a dataset, a mapper device, a label= spec: found otherwise
		}
		is, found := h.Devices[dev]
		if mount == "/" && found && h.Root != "" && is != h.Root {
			// A name that moved between boots (sda is the other disk now).
			r.add("fileSystems.\"/\" is %s, which in this boot is another file system than the installed system's: stage 1 mounts it and finds no NixOS there", dev)
			continue
		}
		if found || slices.Contains(fsys.Options, "nofail") {
			continue
		}
		r.add("fileSystems.%q needs %s, which is on no disk of this server, and has no \"nofail\" option: the boot waits for it and stops in emergency mode", mount, dev)
	}
}

// defaultInitrdModules are the disk controller drivers NixOS's initrd
// holds by default (boot.initrd.includeDefaultModules, kernel.nix): SATA,
// NVMe, virtio and a few SCSI HBAs, but not megaraid_sas or mpt3sas.
var defaultInitrdModules = []string{
	"ahci", "ata_piix", "sata_inic162x", "sata_nv", "sata_promise", "sata_qstor", "sata_sil", "sata_sil24",
	"sata_sis", "sata_svw", "sata_sx4", "sata_uli", "sata_via", "sata_vsc",
	"3w-9xxx", "3w-xxxx", "aic79xx", "aic7xxx", "arcmsr", "hpsa", "uas", "sdhci_pci", "nvme",
	"virtio_pci", "virtio_blk", "virtio_scsi", "mptspi", "hv_storvsc",
}

// checkInitrd finds the disk controllers the initrd has no driver for:
// stage 1 would wait for the root device, then give up on the console.
func checkInitrd(r *reasons, h Host, in *Installed) {
	var missing []string
	for _, c := range h.Controllers {
		have := slices.Contains(in.InitrdModules, c) || in.DefaultModules && slices.Contains(defaultInitrdModules, c)
		if !have && !slices.Contains(missing, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		r.add("the initrd has no driver for the disks' controller (%s): stage 1 never finds the root file system; add it to boot.initrd.availableKernelModules", strings.Join(missing, ", "))
	}
}

var kernelDisk = regexp.MustCompile(`^/dev/(sd[a-z]+|nvme[0-9]+n[0-9]+|vd[a-z]+)`)

var hostIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}$`)

func checkZFS(r *reasons, h Host, in *Installed) {
	if h.ZFS && !in.ZFS {
		r.add("the root file system is on ZFS, but the configuration does not support it: set boot.supportedFilesystems = [ \"zfs\" ]")
	}
	if !in.ZFS && !h.ZFS {
		return
	}
	switch {
	case in.HostID == "":
		r.add("ZFS is used but networking.hostId is not set: the pool would not be imported at boot")
	case !hostIDPattern.MatchString(in.HostID):
		r.add("networking.hostId %q is not 8 hexadecimal digits", in.HostID)
	}
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
