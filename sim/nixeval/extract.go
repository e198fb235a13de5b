package nixeval

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// extract reads the options that decide reachability out of the merged
// configuration. Shapes follow nixpkgs 24.05: defaultGateway may be a
// string or {address, interface}; networkd routes may sit in routeConfig.
func extract(raw map[string]any) (*Installed, error) {
	v := value{raw}
	in := &Installed{
		Raw:                      raw,
		Hostname:                 v.str("networking", "hostName"),
		HostID:                   v.str("networking", "hostId"),
		UsePredictableNames:      v.boolOr(true, "networking", "usePredictableInterfaceNames"),
		UseDHCP:                  v.boolOr(true, "networking", "useDHCP"),
		Nameservers:              v.strings("networking", "nameservers"),
		SSHD:                     v.bool("services", "openssh", "enable"),
		RootKeys:                 v.strings("users", "users", "root", "openssh", "authorizedKeys", "keys"),
		RootKeyFiles:             v.strings("users", "users", "root", "openssh", "authorizedKeys", "keyFiles"),
		SSHOpenFirewall:          v.boolOr(true, "services", "openssh", "openFirewall"),
		Firewall:                 v.boolOr(true, "networking", "firewall", "enable"),
		AllowedTCPPorts:          v.ints("networking", "firewall", "allowedTCPPorts"),
		SSHPorts:                 v.ints("services", "openssh", "ports"),
		GrubEnabled:              v.boolOr(true, "boot", "loader", "grub", "enable"),
		EFISupport:               v.bool("boot", "loader", "grub", "efiSupport"),
		EFIRemovable:             v.bool("boot", "loader", "grub", "efiInstallAsRemovable"),
		SystemdBoot:              v.bool("boot", "loader", "systemd-boot", "enable"),
		StateVersion:             v.str("system", "stateVersion"),
		Networkd:                 v.bool("systemd", "network", "enable"),
		Interfaces:               map[string]Iface{},
		Networks:                 map[string]NetworkdNetwork{},
		FileSystems:              map[string]FileSystem{},
		DefaultGateway:           gatewayAddress(v.get("networking", "defaultGateway")),
		DefaultGateway6:          gatewayAddress(v.get("networking", "defaultGateway6")),
		DefaultGatewayInterface:  v.str("networking", "defaultGateway", "interface"),
		DefaultGateway6Interface: v.str("networking", "defaultGateway6", "interface"),
	}
	in.PermitRootLogin = v.str("services", "openssh", "settings", "PermitRootLogin")
	if legacy := v.str("services", "openssh", "permitRootLogin"); legacy != "" {
		in.PermitRootLogin = legacy
	}

	for name, raw := range v.attrs("networking", "interfaces") {
		iface, err := interfaceOf(value{raw})
		if err != nil {
			return nil, fmt.Errorf("networking.interfaces.%s: %w", name, err)
		}
		in.Interfaces[name] = iface
	}
	for name, raw := range v.attrs("systemd", "network", "networks") {
		in.Networks[name] = networkOf(value{raw})
	}
	for name, raw := range v.attrs("systemd", "network", "links") {
		link := value{raw}
		newName := link.str("linkConfig", "Name")
		if newName == "" {
			continue
		}
		for _, key := range []string{"MACAddress", "PermanentMACAddress"} {
			for _, mac := range strings.Fields(link.str("matchConfig", key)) {
				in.Renames = append(in.Renames, Rename{MAC: strings.ToLower(mac), Name: newName, Source: "systemd.network.links." + name})
			}
		}
	}
	in.Renames = append(in.Renames, udevRenames(v.str("services", "udev", "extraRules"))...)

	in.GrubDevices = v.strings("boot", "loader", "grub", "devices")
	if dev := v.str("boot", "loader", "grub", "device"); dev != "" {
		in.GrubDevices = append([]string{dev}, in.GrubDevices...)
	}
	for _, raw := range v.list("boot", "loader", "grub", "mirroredBoots") {
		mb := value{raw}
		in.MirroredBoots = append(in.MirroredBoots, MirroredBoot{Path: mb.str("path"), Devices: mb.strings("devices")})
	}

	in.InitrdModules = append(v.strings("boot", "initrd", "availableKernelModules"), v.strings("boot", "initrd", "kernelModules")...)
	in.DefaultModules = v.boolOr(true, "boot", "initrd", "includeDefaultModules")

	for mount, raw := range v.attrs("fileSystems") {
		fsys := value{raw}
		in.FileSystems[mount] = FileSystem{Device: fsys.str("device"), FSType: fsys.str("fsType"), Options: fsys.strings("options")}
	}
	in.ZFS = v.bool("boot", "supportedFilesystems", "zfs") || v.bool("boot", "initrd", "supportedFilesystems", "zfs")
	for _, fsys := range in.FileSystems {
		if fsys.FSType == "zfs" {
			in.ZFS = true
		}
	}
	return in, nil
}

func interfaceOf(v value) (Iface, error) {
	var iface Iface
	var err error
	if iface.IPv4, err = addressesOf(v.list("ipv4", "addresses")); err != nil {
		return iface, err
	}
	if iface.IPv6, err = addressesOf(v.list("ipv6", "addresses")); err != nil {
		return iface, err
	}
	// ip4/ip6 are still accepted by nixpkgs as renamed options.
	legacy4, err := addressesOf(v.list("ip4"))
	if err != nil {
		return iface, err
	}
	legacy6, err := addressesOf(v.list("ip6"))
	if err != nil {
		return iface, err
	}
	iface.HasLegacyAddrs = len(legacy4)+len(legacy6) > 0
	iface.IPv4 = append(iface.IPv4, legacy4...)
	iface.IPv6 = append(iface.IPv6, legacy6...)
	if iface.Routes4, err = routesOf(v.list("ipv4", "routes")); err != nil {
		return iface, err
	}
	if iface.Routes6, err = routesOf(v.list("ipv6", "routes")); err != nil {
		return iface, err
	}
	if b, ok := v.get("useDHCP").(bool); ok {
		iface.UseDHCP = &b
	}
	return iface, nil
}

func addressesOf(list []any) ([]Address, error) {
	var out []Address
	for _, raw := range list {
		a := value{raw}
		addr := a.str("address")
		if addr == "" {
			return nil, fmt.Errorf("an address entry has no address")
		}
		n, ok := a.get("prefixLength").(float64)
		if !ok {
			return nil, fmt.Errorf("address %s has no prefixLength", addr)
		}
		out = append(out, Address{Address: addr, PrefixLength: int(n)})
	}
	return out, nil
}

func routesOf(list []any) ([]Route, error) {
	var out []Route
	for _, raw := range list {
		r := value{raw}
		addr := r.str("address")
		if addr == "" {
			return nil, fmt.Errorf("a route has no address")
		}
		n, ok := r.get("prefixLength").(float64)
		if !ok {
			return nil, fmt.Errorf("route to %s has no prefixLength", addr)
		}
		out = append(out, Route{Address: addr, PrefixLength: int(n), Via: r.str("via")})
	}
	return out, nil
}

func networkOf(v value) NetworkdNetwork {
	n := NetworkdNetwork{
		MatchName: strings.Fields(v.str("matchConfig", "Name") + " " + v.str("name")),
		MatchMAC:  strings.Fields(strings.ToLower(v.str("matchConfig", "MACAddress") + " " + v.str("matchConfig", "PermanentMACAddress"))),
		Addresses: append(v.strings("address"), v.strings("networkConfig", "Address")...),
		Gateways:  append(v.strings("gateway"), v.strings("networkConfig", "Gateway")...),
		DHCP:      v.str("networkConfig", "DHCP"),
	}
	for _, raw := range v.list("routes") {
		r := value{raw}
		if inner, ok := r.get("routeConfig").(map[string]any); ok {
			r = value{inner}
		}
		n.Routes = append(n.Routes, NetworkdRoute{
			Destination:   r.str("Destination"),
			Gateway:       r.str("Gateway"),
			GatewayOnLink: r.bool("GatewayOnLink") || r.str("GatewayOnLink") == "yes" || r.str("GatewayOnLink") == "true",
		})
	}
	return n
}

var udevName = regexp.MustCompile(`ATTR\{address\}=="([0-9A-Fa-f:]+)"[^\n]*NAME="([^"]+)"`)

// udevRenames finds the rules nixos-infect writes to pin a name to a MAC.
func udevRenames(rules string) []Rename {
	var out []Rename
	for _, m := range udevName.FindAllStringSubmatch(rules, -1) {
		out = append(out, Rename{MAC: strings.ToLower(m[1]), Name: m[2], Source: "services.udev.extraRules"})
	}
	return out
}

func gatewayAddress(raw any) string {
	switch g := raw.(type) {
	case string:
		return g
	case map[string]any:
		s, _ := g["address"].(string)
		return s
	}
	return ""
}

// value walks JSON data by attribute path; missing or mistyped is zero.
type value struct{ raw any }

func (v value) get(path ...string) any {
	cur := v.raw
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (v value) str(path ...string) string {
	s, _ := v.get(path...).(string)
	return s
}

func (v value) bool(path ...string) bool {
	b, _ := v.get(path...).(bool)
	return b
}

func (v value) boolOr(def bool, path ...string) bool {
	if b, ok := v.get(path...).(bool); ok {
		return b
	}
	return def
}

func (v value) list(path ...string) []any {
	l, _ := v.get(path...).([]any)
	return l
}

func (v value) attrs(path ...string) map[string]any {
	m, _ := v.get(path...).(map[string]any)
	return m
}

func (v value) strings(path ...string) []string {
	var out []string
	switch x := v.get(path...).(type) {
	case string:
		out = append(out, x)
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func (v value) ints(path ...string) []int {
	var out []int
	for _, e := range v.list(path...) {
		if n, ok := e.(float64); ok {
			out = append(out, int(n))
		}
	}
	sort.Ints(out)
	return out
}
