package runner

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/tmpl"
)

// RenderConnections renders the templated connection variables of every
// host (ansible_host: "{{ ip }}", and user, port and ssh_key alike) with the
// host's variables, the magic ones and the extra vars, as Ansible templates
// them before it connects. It changes inv's hosts in place, before any host
// is touched; an error names the host and the variable.
func RenderConnections(ctx context.Context, engine *tmpl.Engine, inv *inventory.Inventory, extra map[string]any) error {
	var groups, hostvars map[string]any
	for _, h := range inv.Hosts {
		var templated []string
		for _, name := range []string{"host", "ansible_host", "user", "ansible_user", "port", "ansible_port", "ssh_key", "ansible_ssh_private_key_file"} {
			if v, ok := h.Vars[name]; ok && hasTemplate(v) {
				templated = append(templated, name)
			}
		}
		if len(templated) == 0 {
			continue
		}
		if groups == nil {
			groups, hostvars = inv.GroupMembers(), inv.HostVars()
		}
		vars := maps.Clone(h.Vars)
		maps.Copy(vars, h.Magic())
		vars["groups"], vars["hostvars"] = groups, hostvars
		maps.Copy(vars, extra)
		for _, name := range templated {
			v, err := engine.RenderValueContext(ctx, h.Vars[name], vars)
			if err != nil {
				return fmt.Errorf("host %s: %s: %w", h.Name, name, err)
			}
			if err := setConnection(h, name, v); err != nil {
				return fmt.Errorf("host %s: %s: %w", h.Name, name, err)
			}
		}
	}
	return nil
}

func hasTemplate(v any) bool {
	switch v := v.(type) {
	case string:
		return inventory.IsTemplate(v)
	case []any:
		for _, x := range v {
			if hasTemplate(x) {
				return true
			}
		}
	}
	return false
}

func setConnection(h *inventory.Host, name string, v any) error {
	str := func() (string, error) {
		s := strings.TrimSpace(fmt.Sprint(v))
		if s == "" {
			return "", fmt.Errorf("renders empty")
		}
		return s, nil
	}
	switch name {
	case "host", "ansible_host":
		s, err := str()
		if err != nil {
			return err
		}
		h.Address = s
	case "user", "ansible_user":
		s, err := str()
		if err != nil {
			return err
		}
		h.User = s
	case "port", "ansible_port":
		s, err := str()
		if err != nil {
			return err
		}
		p, err := strconv.Atoi(s)
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("renders %q, want a port (1 to 65535)", s)
		}
		h.Port = p
	default:
		var paths []string
		switch v := v.(type) {
		case []any:
			for _, x := range v {
				paths = append(paths, fmt.Sprint(x))
			}
		default:
			paths = []string{fmt.Sprint(v)}
		}
		h.KeyFiles = nil
		for _, p := range paths {
			h.KeyFiles = append(h.KeyFiles, keyPath(h, strings.TrimSpace(p)))
		}
	}
	return nil
}

// keyPath expands ~ and resolves a relative key against the inventory
// file that defined the host, as the inventory resolves literal paths.
func keyPath(h *inventory.Host, p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if filepath.IsAbs(p) || h.Source == "" {
		return p
	}
	file := h.Source
	if i := strings.LastIndexByte(file, ':'); i > 0 {
		file = file[:i]
	}
	return filepath.Join(filepath.Dir(file), p)
}
