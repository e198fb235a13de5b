package inventory

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/yamlx"
)

const (
	allGroup       = "all"
	ungroupedGroup = "ungrouped"
)

// Load reads one or more YAML or INI inventories in order, merging groups and hosts
// defined in several of them, then the group_vars/ and host_vars/
// directories next to each file.
//
// Variables merge, lowest precedence first, as Ansible's default
// VARIABLE_PRECEDENCE (lib/ansible/vars/manager.py, get_vars): the inline
// vars of group `all`, then every other group's inline vars, then
// group_vars/all, then every other group's group_vars files; then the
// host's inline vars and its host_vars files. Groups go outer before inner
// (by depth, then ansible_group_priority, then name). So group_vars/all.yml
// overrides an inner group's inline vars, and a group_vars file any
// group's inline vars. A variable replaces a lower one whole; mappings are
// not merged.
func Load(paths ...string) (*Inventory, error) {
	if len(paths) == 0 {
		return nil, errors.New("no inventory file given")
	}
	l := newLoader()
	var dirs []string
	seenDir := map[string]bool{}
	for _, p := range paths {
		if err := l.loadFile(p); err != nil {
			return nil, err
		}
		dir := filepath.Dir(p)
		if !seenDir[dir] {
			seenDir[dir] = true
			dirs = append(dirs, dir)
		}
	}
	for _, dir := range dirs {
		if err := l.loadVarsDirs(dir); err != nil {
			return nil, err
		}
	}
	return l.build()
}

type groupDef struct {
	name     string
	source   string
	hosts    []string
	hostSet  map[string]bool
	children []string
	parents  []string
	inline   []*layer
	files    []*layer
}

type hostDef struct {
	name   string
	source string
	inline []*layer
	files  []*layer
}

// loader gathers definitions from every file before anything merges.
type loader struct {
	groups     map[string]*groupDef
	groupOrder []string
	hosts      map[string]*hostDef
	hostOrder  []string
}

func newLoader() *loader {
	l := &loader{groups: map[string]*groupDef{}, hosts: map[string]*hostDef{}}
	l.group(allGroup, "")
	l.group(ungroupedGroup, "")
	l.groups[allGroup].children = []string{ungroupedGroup}
	l.groups[ungroupedGroup].parents = []string{allGroup}
	return l
}

func (l *loader) group(name, source string) *groupDef {
	g, ok := l.groups[name]
	if !ok {
		g = &groupDef{name: name, hostSet: map[string]bool{}}
		l.groups[name] = g
		l.groupOrder = append(l.groupOrder, name)
	}
	if g.source == "" {
		g.source = source
	}
	return g
}

func (l *loader) host(name, source string) *hostDef {
	h, ok := l.hosts[name]
	if !ok {
		h = &hostDef{name: name, source: source}
		l.hosts[name] = h
		l.hostOrder = append(l.hostOrder, name)
	}
	return h
}

func (l *loader) loadFile(path string) error {
	data, err := yamlx.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	if isINI(path, data) {
		return l.loadINI(path, data)
	}
	s := source{path: path, dir: filepath.Dir(path)}
	root, err := parseDocument(path, data)
	if err != nil {
		return err
	}
	if root == nil {
		return &Error{File: path, Msg: "empty inventory (want a mapping of groups, usually all:)"}
	}
	if root.Kind != yaml.MappingNode {
		return s.errorf(root, "want a mapping of groups at the top level, got %s", describe(root))
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name, err := groupName(s, k)
		if err != nil {
			return err
		}
		if err := l.parseGroup(s, name, k, v); err != nil {
			return err
		}
	}
	return nil
}

// groupName reads and checks a group name: characters that patterns use as
// syntax would make the group impossible to select.
func groupName(s source, k *yaml.Node) (string, error) {
	name, ok := nameScalar(k)
	if !ok || name == "" {
		return "", s.errorf(k, "want a group name, got %s", describe(k))
	}
	if i := strings.IndexAny(name, " \t\n,:!&*?[]~@/\\"); i >= 0 {
		return "", s.errorf(k, "group %q: %q is not allowed in group names", name, name[i:i+1])
	}
	return name, nil
}

func (l *loader) parseGroup(s source, name string, key, body *yaml.Node) error {
	g := l.group(name, s.at(key))
	body = deref(body)
	if isNull(body) {
		return nil
	}
	if body.Kind != yaml.MappingNode {
		return s.errorf(body, "group %s: want a mapping with hosts, vars or children, got %s", name, describe(body))
	}
	for i := 0; i+1 < len(body.Content); i += 2 {
		k, v := body.Content[i], body.Content[i+1]
		field, _ := nameScalar(k)
		var err error
		switch field {
		case "hosts":
			err = l.parseHosts(s, g, v)
		case "vars":
			var vars *layer
			vars, err = parseVars(s, v, "group "+name)
			if err == nil {
				g.inline = append(g.inline, vars)
			}
		case "children":
			err = l.parseChildren(s, g, v)
		default:
			err = s.errorf(k, "group %s: unknown key %q (want hosts, vars or children)", name, k.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (l *loader) parseHosts(s source, g *groupDef, n *yaml.Node) error {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return s.errorf(n, "group %s: hosts: want a mapping of host names (name: or name: {vars}), got %s", g.name, describe(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		pattern, ok := nameScalar(k)
		if !ok || pattern == "" {
			return s.errorf(k, "group %s: want a host name, got %s", g.name, describe(k))
		}
		base, port, err := splitHostPort(pattern)
		if err != nil {
			return s.errorf(k, "group %s: host %q: %v", g.name, pattern, err)
		}
		names, err := expandHostRange(base)
		if err != nil {
			return s.errorf(k, "group %s: host %q: %v", g.name, pattern, err)
		}
		if len(l.hosts)+len(names) > MaxHosts {
			return s.errorf(k, "group %s: host %q: the inventory would hold more than %d hosts", g.name, pattern, MaxHosts)
		}
		for _, name := range names {
			if err := checkHostName(name); err != nil {
				return s.errorf(k, "group %s: host %q: %v", g.name, name, err)
			}
		}
		who := "host " + pattern
		if !isNull(v) && deref(v).Kind != yaml.MappingNode {
			return s.errorf(v, "%s: want a mapping of variables or nothing, got %s", who, describe(v))
		}
		vars, err := parseVars(s, v, who)
		if err != nil {
			return err
		}
		l.addHosts(g, names, port, vars, s.at(k))
	}
	return nil
}

// addHosts makes names members of g with the inline vars given where they
// are listed (source, as file:line); a name:port gives the port as
// ansible_port, below the host's own vars.
func (l *loader) addHosts(g *groupDef, names []string, port int, vars *layer, source string) {
	var portVars *layer
	if port != 0 {
		portVars = newLayer()
		portVars.vars["ansible_port"] = port
		portVars.port = &port
	}
	for _, name := range names {
		h := l.host(name, source)
		if portVars != nil {
			h.inline = append(h.inline, portVars)
		}
		h.inline = append(h.inline, vars)
		if !g.hostSet[name] {
			g.hostSet[name] = true
			g.hosts = append(g.hosts, name)
		}
	}
}

// splitHostPort splits the Ansible "name:port" form. A name with several
// colons outside brackets is an IPv6 address and keeps them.
func splitHostPort(pattern string) (string, int, error) {
	colons, last, depth := 0, -1, 0
	for i, c := range pattern {
		switch c {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				colons++
				last = i
			}
		}
	}
	if colons != 1 {
		return pattern, 0, nil
	}
	portText := pattern[last+1:]
	if !isDigits(portText) {
		return "", 0, fmt.Errorf("port %q is not a number", portText)
	}
	var port int
	if _, err := fmt.Sscan(portText, &port); err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %s is out of range (1 to 65535)", portText)
	}
	return pattern[:last], port, nil
}

// checkHostName rejects names that host patterns could not select.
func checkHostName(name string) error {
	if name == "" {
		return errors.New("empty host name")
	}
	if i := strings.IndexAny(name, " \t\n,*?/\\"); i >= 0 {
		return fmt.Errorf("%q is not allowed in host names", name[i:i+1])
	}
	if strings.ContainsAny(name[:1], "!&~@") {
		return fmt.Errorf("host names cannot start with %q", name[:1])
	}
	return nil
}

func (l *loader) parseChildren(s source, parent *groupDef, n *yaml.Node) error {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return s.errorf(n, "group %s: children: want a mapping of group names, got %s", parent.name, describe(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name, err := groupName(s, k)
		if err != nil {
			return err
		}
		if err := l.link(s, k, parent.name, name); err != nil {
			return err
		}
		if err := l.parseGroup(s, name, k, v); err != nil {
			return err
		}
	}
	return nil
}

// link makes child a child group of parent, refusing cycles.
func (l *loader) link(s source, at *yaml.Node, parent, child string) error {
	if child == allGroup {
		return s.errorf(at, "group %s: all cannot be a child group", parent)
	}
	p := l.group(parent, "")
	if contains(p.children, child) {
		return nil
	}
	if path := l.childPath(child, parent); path != nil {
		cycle := append([]string{parent}, path...)
		return s.errorf(at, "group %s: child group %s makes a cycle: %s", parent, child, strings.Join(cycle, " > "))
	}
	c := l.group(child, s.at(at))
	p.children = append(p.children, child)
	c.parents = append(c.parents, parent)
	return nil
}

// childPath returns the chain of groups from one group down to another
// through children, or nil when there is none.
func (l *loader) childPath(from, to string) []string {
	if from == to {
		return []string{from}
	}
	g, ok := l.groups[from]
	if !ok {
		return nil
	}
	for _, c := range g.children {
		if path := l.childPath(c, to); path != nil {
			return append([]string{from}, path...)
		}
	}
	return nil
}

// loadVarsDirs reads group_vars/ and host_vars/ in dir for every known group
// and host. Files for unknown names are ignored, as Ansible does.
func (l *loader) loadVarsDirs(dir string) error {
	s := source{dir: dir}
	for _, name := range l.groupOrder {
		files, err := varsFiles(filepath.Join(dir, "group_vars"), name)
		if err != nil {
			return err
		}
		for _, f := range files {
			s.path = f
			vars, err := loadVarsFile(s, "group "+name)
			if err != nil {
				return err
			}
			l.groups[name].files = append(l.groups[name].files, vars)
		}
	}
	for _, name := range l.hostOrder {
		files, err := varsFiles(filepath.Join(dir, "host_vars"), name)
		if err != nil {
			return err
		}
		for _, f := range files {
			s.path = f
			vars, err := loadVarsFile(s, "host "+name)
			if err != nil {
				return err
			}
			l.hosts[name].files = append(l.hosts[name].files, vars)
		}
	}
	return nil
}

// build ties groups to `all`, places hosts in `ungrouped`, and merges each
// host's variables.
func (l *loader) build() (*Inventory, error) {
	for _, name := range l.groupOrder {
		if name != allGroup && len(l.groups[name].parents) == 0 {
			l.groups[allGroup].children = append(l.groups[allGroup].children, name)
			l.groups[name].parents = []string{allGroup}
		}
	}
	depths := map[string]int{}
	var depth func(name string) int
	depth = func(name string) int {
		if d, ok := depths[name]; ok {
			return d
		}
		d := 0
		for _, p := range l.groups[name].parents {
			d = max(d, depth(p)+1)
		}
		depths[name] = d
		return d
	}

	inv := &Inventory{Groups: map[string]*Group{}, byName: map[string]*Host{}}
	inline, files := map[string]*layer{}, map[string]*layer{}
	for _, name := range l.groupOrder {
		g := l.groups[name]
		inline[name], files[name] = newLayer(), newLayer()
		for _, lay := range g.inline {
			inline[name].apply(lay)
		}
		for _, lay := range g.files {
			files[name].apply(lay)
		}
		vars := newLayer()
		vars.apply(inline[name])
		vars.apply(files[name])
		priority := 1
		if vars.priority != nil {
			priority = *vars.priority
		}
		inv.Groups[name] = &Group{
			Name:     name,
			Hosts:    append([]string{}, g.hosts...),
			Children: append([]string{}, g.children...),
			Parents:  append([]string{}, g.parents...),
			Depth:    depth(name),
			Priority: priority,
			Vars:     copyVars(vars.vars),
			Source:   g.source,
		}
	}

	directGroups := map[string][]string{}
	for _, name := range l.groupOrder {
		for _, h := range l.groups[name].hosts {
			directGroups[h] = append(directGroups[h], name)
		}
	}
	ungrouped := inv.Groups[ungroupedGroup]
	ungrouped.Hosts = nil
	for _, name := range l.hostOrder {
		def := l.hosts[name]
		member := map[string]bool{allGroup: true}
		var climb func(string)
		climb = func(g string) {
			if member[g] {
				return
			}
			member[g] = true
			for _, p := range l.groups[g].parents {
				climb(p)
			}
		}
		for _, g := range directGroups[name] {
			climb(g)
		}
		// A host in no group but all belongs to ungrouped; one listed under
		// ungrouped and elsewhere does not.
		if len(member) == 1 || (len(member) == 2 && member[ungroupedGroup]) {
			member[ungroupedGroup] = true
			ungrouped.Hosts = append(ungrouped.Hosts, name)
		} else {
			delete(member, ungroupedGroup)
		}

		groups := make([]string, 0, len(member))
		for g := range member {
			groups = append(groups, g)
		}
		sort.Slice(groups, func(i, j int) bool {
			a, b := inv.Groups[groups[i]], inv.Groups[groups[j]]
			if a.Depth != b.Depth {
				return a.Depth < b.Depth
			}
			if a.Priority != b.Priority {
				return a.Priority < b.Priority
			}
			return a.Name < b.Name
		})

		vars := newLayer()
		for _, g := range groups {
			vars.apply(inline[g])
		}
		for _, g := range groups {
			vars.apply(files[g])
		}
		for _, lay := range append(append([]*layer{}, def.inline...), def.files...) {
			vars.apply(lay)
		}
		h := &Host{
			Name:    name,
			Address: name,
			Groups:  groups,
			Vars:    copyVars(vars.vars),
			Source:  def.source,
		}
		if vars.address != nil {
			h.Address = *vars.address
		}
		if vars.port != nil {
			h.Port = *vars.port
		}
		if vars.user != nil {
			h.User = *vars.user
		}
		if vars.keyFiles != nil {
			h.KeyFiles = append([]string{}, *vars.keyFiles...)
		}
		inv.Hosts = append(inv.Hosts, h)
		inv.byName[name] = h
	}
	return inv, nil
}

func contains(list []string, s string) bool {
	for _, item := range list {
		if item == s {
			return true
		}
	}
	return false
}
