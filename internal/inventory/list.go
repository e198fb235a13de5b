package inventory

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/nixbook/nixbook/internal/secrets"
)

// List renders hosts as `ansible-inventory --list` does
// (lib/ansible/cli/inventory.py, json_inventory): each group reachable from
// `all` with its member hosts among hosts and its child groups, empty keys
// and empty groups left out, `all` with children only, and every host's
// merged variables under _meta.hostvars. Secrets are masked as in every
// other output.
func (inv *Inventory) List(hosts []*Host) ([]byte, error) {
	available := map[string]bool{}
	var values []string
	for _, h := range hosts {
		available[h.Name] = true
		values = append(values, secrets.Values(h.Vars)...)
	}
	r := secrets.NewRedactor(values)
	out := map[string]any{}
	seen := map[string]bool{}
	var format func(name string)
	format = func(name string) {
		g, ok := inv.Groups[name]
		if !ok {
			return
		}
		entry := map[string]any{}
		if name != allGroup {
			var members []string
			for _, h := range g.Hosts {
				if available[h] {
					members = append(members, h)
				}
			}
			if len(members) > 0 {
				entry["hosts"] = members
			}
		}
		children := slices.Clone(g.Children)
		if len(children) > 0 {
			entry["children"] = children
		}
		if len(entry) > 0 {
			out[name] = entry
		}
		for _, c := range children {
			if !seen[c] {
				seen[c] = true
				format(c)
			}
		}
	}
	format(allGroup)
	hostvars := map[string]any{}
	for _, h := range hosts {
		if len(h.Vars) > 0 {
			hostvars[h.Name] = secrets.MaskVars(h.Vars, r)
		}
	}
	out["_meta"] = map[string]any{"hostvars": hostvars}
	b, err := json.MarshalIndent(out, "", "    ")
	if err != nil {
		return nil, fmt.Errorf("inventory --list: %w", err)
	}
	return append(b, '\n'), nil
}
