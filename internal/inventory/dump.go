package inventory

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/secrets"
)

// Dump renders the inventory as YAML for `nixbook inventory`: every host in
// inventory order with its connection settings, groups and merged vars, then
// every group by name with its members, children and own vars. Mapping keys
// inside vars are sorted, so the output is stable. Secrets are masked as in
// every other output.
func (inv *Inventory) Dump() ([]byte, error) {
	var values []string
	for _, h := range inv.Hosts {
		values = append(values, secrets.Values(h.Vars)...)
	}
	for _, g := range inv.Groups {
		values = append(values, secrets.Values(g.Vars)...)
	}
	r := secrets.NewRedactor(values)
	hosts := mappingNode()
	for _, h := range inv.Hosts {
		body, err := h.dumpNode(r)
		if err != nil {
			return nil, err
		}
		addPair(hosts, h.Name, body)
	}
	names := make([]string, 0, len(inv.Groups))
	for name := range inv.Groups {
		names = append(names, name)
	}
	sort.Strings(names)
	groups := mappingNode()
	for _, name := range names {
		body, err := inv.Groups[name].dumpNode(r)
		if err != nil {
			return nil, err
		}
		addPair(groups, name, body)
	}
	root := mappingNode()
	addPair(root, "hosts", hosts)
	addPair(root, "groups", groups)
	return encodeNode(root)
}

// Dump renders one host as YAML, as in the inventory's dump.
func (h *Host) Dump() ([]byte, error) {
	body, err := h.dumpNode(secrets.NewRedactor(secrets.Values(h.Vars)))
	if err != nil {
		return nil, err
	}
	root := mappingNode()
	addPair(root, h.Name, body)
	return encodeNode(root)
}

func (h *Host) dumpNode(r *secrets.Redactor) (*yaml.Node, error) {
	n := mappingNode()
	if h.Source != "" {
		addPair(n, "source", stringNode(h.Source))
	}
	addPair(n, "address", stringNode(h.Address))
	if h.Port != 0 {
		addPair(n, "port", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(h.Port)})
	}
	if h.User != "" {
		addPair(n, "user", stringNode(h.User))
	}
	if len(h.KeyFiles) > 0 {
		addPair(n, "key_files", listNode(h.KeyFiles, false))
	}
	addPair(n, "groups", listNode(h.Groups, true))
	if len(h.Vars) > 0 {
		vars, err := valueNode(secrets.MaskVars(h.Vars, r))
		if err != nil {
			return nil, fmt.Errorf("dump host %s: %w", h.Name, err)
		}
		addPair(n, "vars", vars)
	}
	return n, nil
}

func (g *Group) dumpNode(r *secrets.Redactor) (*yaml.Node, error) {
	n := mappingNode()
	if g.Source != "" {
		addPair(n, "source", stringNode(g.Source))
	}
	addPair(n, "depth", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(g.Depth)})
	if g.Priority != 1 {
		addPair(n, "priority", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(g.Priority)})
	}
	if len(g.Parents) > 0 {
		addPair(n, "parents", listNode(g.Parents, true))
	}
	if len(g.Children) > 0 {
		addPair(n, "children", listNode(g.Children, true))
	}
	if len(g.Hosts) > 0 {
		addPair(n, "hosts", listNode(g.Hosts, true))
	}
	if len(g.Vars) > 0 {
		vars, err := valueNode(secrets.MaskVars(g.Vars, r))
		if err != nil {
			return nil, fmt.Errorf("dump group %s: %w", g.Name, err)
		}
		addPair(n, "vars", vars)
	}
	return n, nil
}

func mappingNode() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }

func stringNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func listNode(items []string, flow bool) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	if flow {
		n.Style = yaml.FlowStyle
	}
	for _, item := range items {
		n.Content = append(n.Content, stringNode(item))
	}
	return n
}

func valueNode(v any) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	return &n, nil
}

func addPair(m *yaml.Node, key string, value *yaml.Node) {
	m.Content = append(m.Content, stringNode(key), value)
}

func encodeNode(n *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("dump inventory: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("dump inventory: %w", err)
	}
	return buf.Bytes(), nil
}
