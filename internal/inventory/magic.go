package inventory

import (
	"maps"
	"net"
	"slices"
	"strings"
)

// GroupMembers is Ansible's `groups` magic variable: every group with the
// hosts in it, through its children too, in inventory order.
func (inv *Inventory) GroupMembers() map[string]any {
	out := make(map[string]any, len(inv.Groups))
	for name := range inv.Groups {
		members := []string{}
		for _, h := range inv.Hosts {
			if h.InGroup(name) {
				members = append(members, h.Name)
			}
		}
		out[name] = members
	}
	return out
}

// HostVars is Ansible's `hostvars` magic variable as the inventory knows
// it: each host's merged variables with its inventory_hostname,
// inventory_hostname_short and group_names. Facts and registered results
// of other hosts are not in it.
func (inv *Inventory) HostVars() map[string]any {
	out := make(map[string]any, len(inv.Hosts))
	for _, h := range inv.Hosts {
		v := maps.Clone(h.Vars)
		if v == nil {
			v = map[string]any{}
		}
		maps.Copy(v, h.Magic())
		out[h.Name] = v
	}
	return out
}

// Magic is the host's own magic variables as Ansible's Host.get_magic_vars
// (lib/ansible/inventory/host.py) gives them: inventory_hostname,
// inventory_hostname_short (up to the first dot, an IP address whole) and
// group_names (its groups but all, sorted).
func (h *Host) Magic() map[string]any {
	short, _, _ := strings.Cut(h.Name, ".")
	if net.ParseIP(h.Name) != nil {
		short = h.Name
	}
	names := []string{}
	for _, g := range h.Groups {
		if g != allGroup {
			names = append(names, g)
		}
	}
	slices.Sort(names)
	return map[string]any{
		"inventory_hostname":       h.Name,
		"inventory_hostname_short": short,
		"group_names":              names,
	}
}
