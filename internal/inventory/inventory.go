// Package inventory loads Ansible-shaped YAML inventories: groups with hosts,
// vars and children, host ranges, and host variables merged by precedence.
package inventory

import "fmt"

// Inventory is a loaded inventory: every host once, in order of first
// appearance, with its variables flattened.
type Inventory struct {
	Hosts  []*Host
	Groups map[string]*Group

	// byName indexes Hosts; Load fills it, lookups fall back to a scan for
	// inventories built by hand.
	byName map[string]*Host
}

// Group is a named group of hosts.
type Group struct {
	Name     string
	Hosts    []string // direct members
	Children []string
	Parents  []string
	// Depth is the longest path from `all` (depth 0); deeper groups win when
	// variables merge.
	Depth int
	// Priority is `ansible_group_priority` (1 when unset); it orders groups
	// of the same depth before their names do.
	Priority int
	// Vars are the group's own variables: inline `vars` then group_vars files.
	Vars map[string]any
	// Source is "file:line" where the group was named first; empty for the
	// implicit groups.
	Source string
}

// Host is one host with its merged variables.
type Host struct {
	Name     string
	Address  string   // `host` or `ansible_host`; Name when unset
	Port     int      // `port` or `ansible_port`; 0 when unset
	User     string   // `user` or `ansible_user`
	KeyFiles []string // `ssh_key` or `ansible_ssh_private_key_file` (a string or a list)
	// Groups is every group the host belongs to, `all` included, in the order
	// their variables were merged (lowest precedence first).
	Groups []string
	Vars   map[string]any
	// Source is "file:line" where the host was defined first.
	Source string
}

// Host returns the host with the given inventory name.
func (inv *Inventory) Host(name string) (*Host, bool) {
	if h, ok := inv.byName[name]; ok {
		return h, true
	}
	for _, h := range inv.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return nil, false
}

// InGroup reports whether the host belongs to the group, directly or through
// a child group.
func (h *Host) InGroup(group string) bool {
	for _, g := range h.Groups {
		if g == group {
			return true
		}
	}
	return false
}

// Error is a problem at a place in an inventory, a vars file or an extra
// vars file.
type Error struct {
	File string
	Line int // 0 when the problem is about the whole file
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}
