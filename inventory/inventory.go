// Package inventory loads Ansible-shaped YAML inventories: groups with hosts,
// vars and children, host ranges, and host variables merged by precedence.
package inventory

// Inventory is a loaded inventory: every host once, in order of first
// appearance, with its variables flattened.
type Inventory struct {
	Hosts  []*Host
	Groups map[string]*Group
}

// Group is a named group of hosts.
type Group struct {
	Name     string
	Hosts    []string // direct members
	Children []string
	Vars     map[string]any
}

// Host is one host with its merged variables.
type Host struct {
	Name     string
	Address  string   // `host` or `ansible_host`; Name when unset
	Port     int      // `port` or `ansible_port`; 0 when unset
	User     string   // `user` or `ansible_user`
	KeyFiles []string // `ssh_key` or `ansible_ssh_private_key_file` (a string or a list)
	Groups   []string // every group the host belongs to, `all` included
	Vars     map[string]any
	// Source is "file:line" where the host was defined first.
	Source string
}
