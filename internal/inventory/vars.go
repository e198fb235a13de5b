package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/yamlx"
)

// connField is a connection setting that several variable names can set.
type connField int

const (
	noConnField connField = iota
	addressField
	portField
	userField
	keysField
)

// connFieldOf says which connection setting a variable name sets.
func connFieldOf(name string) connField {
	switch name {
	case "host", "ansible_host":
		return addressField
	case "port", "ansible_port":
		return portField
	case "user", "ansible_user":
		return userField
	case "ssh_key", "ansible_ssh_private_key_file":
		return keysField
	}
	return noConnField
}

// connAliases are the names of each connection setting.
func connAliases(f connField) []string {
	switch f {
	case addressField:
		return []string{"host", "ansible_host"}
	case portField:
		return []string{"port", "ansible_port"}
	case userField:
		return []string{"user", "ansible_user"}
	case keysField:
		return []string{"ssh_key", "ansible_ssh_private_key_file"}
	}
	return nil
}

const priorityVar = "ansible_group_priority"

// layer is one set of variables at one precedence level, with the connection
// settings among them already checked and resolved (key paths depend on the
// file that named them, which is lost once layers merge).
type layer struct {
	vars     map[string]any
	address  *string
	port     *int
	user     *string
	keyFiles *[]string
	priority *int
}

func newLayer() *layer { return &layer{vars: map[string]any{}} }

// apply lays other over l: each variable other sets replaces l's whole value
// (no deep merge), and setting one name of a connection setting drops its
// other names so the winning layer decides.
func (l *layer) apply(other *layer) {
	for name, value := range other.vars {
		if f := connFieldOf(name); f != noConnField {
			for _, alias := range connAliases(f) {
				delete(l.vars, alias)
			}
		}
		l.vars[name] = value
	}
	if other.address != nil {
		l.address = other.address
	}
	if other.port != nil {
		l.port = other.port
	}
	if other.user != nil {
		l.user = other.user
	}
	if other.keyFiles != nil {
		l.keyFiles = other.keyFiles
	}
	if other.priority != nil {
		l.priority = other.priority
	}
}

// source is the file being read: errors name it, relative key paths are
// resolved against dir (the inventory file's directory).
type source struct {
	path string
	dir  string
}

func (s source) at(n *yaml.Node) string { return fmt.Sprintf("%s:%d", s.path, n.Line) }

func (s source) errorf(n *yaml.Node, format string, args ...any) error {
	return &Error{File: s.path, Line: n.Line, Msg: fmt.Sprintf(format, args...)}
}

type nodePair struct {
	key, value *yaml.Node
	merged     bool // came in through a `<<` merge key
}

// varPairs lists a mapping's entries with YAML merge keys expanded: merged
// entries come first so explicit ones override them, and of several merged
// mappings the earlier wins, as the merge key spec says.
func varPairs(n *yaml.Node) []nodePair {
	var merged, explicit []nodePair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !isMergeKey(k) {
			explicit = append(explicit, nodePair{key: k, value: v})
			continue
		}
		v = deref(v)
		var sources []*yaml.Node
		switch v.Kind {
		case yaml.MappingNode:
			sources = []*yaml.Node{v}
		case yaml.SequenceNode:
			for j := len(v.Content) - 1; j >= 0; j-- {
				sources = append(sources, deref(v.Content[j]))
			}
		}
		for _, src := range sources {
			if src.Kind != yaml.MappingNode {
				continue // yaml.v3 rejects these when decoding values
			}
			for _, p := range varPairs(src) {
				p.merged = true
				merged = append(merged, p)
			}
		}
	}
	return append(merged, explicit...)
}

// parseVars reads a mapping of variables; who ("host ks1", "group web")
// prefixes every error.
func parseVars(s source, n *yaml.Node, who string) (*layer, error) {
	n = deref(n)
	l := newLayer()
	if isNull(n) {
		return l, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, s.errorf(n, "%s: want a mapping of variables, got %s", who, describe(n))
	}
	explicitConn := map[connField]string{}
	for _, p := range varPairs(n) {
		name, ok := stringScalar(p.key)
		if !ok || name == "" {
			return nil, s.errorf(p.key, "%s: variable names must be strings, got %s", who, describe(p.key))
		}
		var value any
		if err := p.value.Decode(&value); err != nil {
			return nil, s.errorf(p.value, "%s: %s: %v", who, name, yamlError(s.path, err).(*Error).Msg)
		}
		if f := connFieldOf(name); f != noConnField {
			if !p.merged {
				if other, ok := explicitConn[f]; ok && other != name {
					return nil, s.errorf(p.key, "%s: %s and %s both set", who, other, name)
				}
				explicitConn[f] = name
			}
			if err := l.setConn(s, who, f, name, p.value); err != nil {
				return nil, err
			}
			for _, alias := range connAliases(f) {
				delete(l.vars, alias)
			}
		}
		if name == priorityVar {
			priority, ok := intScalar(p.value)
			if !ok {
				return nil, s.errorf(p.value, "%s: %s: want an integer, got %s", who, name, describe(p.value))
			}
			l.priority = &priority
		}
		l.vars[name] = value
	}
	return l, nil
}

// IsTemplate reports a connection value to render before dialing, such as
// ansible_host: "{{ ip }}".
func IsTemplate(v string) bool { return strings.Contains(v, "{{") || strings.Contains(v, "{%") }

// setConn checks a connection variable and records its typed value.
func (l *layer) setConn(s source, who string, f connField, name string, n *yaml.Node) error {
	switch f {
	case addressField, userField:
		v, ok := stringScalar(n)
		if !ok || v == "" {
			return s.errorf(n, "%s: %s: want a string, got %s", who, name, describe(n))
		}
		if f == addressField {
			l.address = &v
		} else {
			l.user = &v
		}
	case portField:
		if v, ok := stringScalar(n); ok && IsTemplate(v) {
			return nil // rendered before dialing, from the vars
		}
		port, ok := intScalar(n)
		if !ok {
			return s.errorf(n, "%s: %s: want an integer, got %s", who, name, describe(n))
		}
		if port < 1 || port > 65535 {
			return s.errorf(n, "%s: %s: %d is out of range (1 to 65535)", who, name, port)
		}
		l.port = &port
	case keysField:
		var paths []string
		if v, ok := stringScalar(n); ok {
			paths = []string{v}
		} else if seq := deref(n); seq.Kind == yaml.SequenceNode {
			for _, item := range seq.Content {
				v, ok := stringScalar(item)
				if !ok {
					return s.errorf(item, "%s: %s: want a path, got %s", who, name, describe(item))
				}
				paths = append(paths, v)
			}
		} else {
			return s.errorf(n, "%s: %s: want a path or a list of paths, got %s", who, name, describe(n))
		}
		resolved := make([]string, 0, len(paths))
		for _, p := range paths {
			if p == "" {
				return s.errorf(n, "%s: %s: empty path", who, name)
			}
			r, err := resolveKeyPath(p, s.dir)
			if err != nil {
				return s.errorf(n, "%s: %s: %v", who, name, err)
			}
			resolved = append(resolved, r)
		}
		l.keyFiles = &resolved
	}
	return nil
}

// resolveKeyPath expands a leading ~ and makes a relative path relative to
// the inventory's directory. Templated paths are left for the runner.
func resolveKeyPath(p, dir string) (string, error) {
	if strings.Contains(p, "{{") {
		return p, nil
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("expand %s: %w", p, err)
		}
		return filepath.Join(home, p[1:]), nil
	}
	if strings.HasPrefix(p, "~") {
		return "", fmt.Errorf("%s: only ~/ is expanded, not ~user", p)
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p), nil
	}
	return filepath.Join(dir, p), nil
}

// varsFiles lists the files that hold the variables of one group or host in
// a group_vars or host_vars directory, in load order: <name>, <name>.yml,
// <name>.yaml, <name>.json, then everything under the directory <name>/.
func varsFiles(base, name string) ([]string, error) {
	var files []string
	isDir := false
	for _, candidate := range []string{name, name + ".yml", name + ".yaml", name + ".json"} {
		p := filepath.Join(base, candidate)
		info, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read vars: %w", err)
		}
		switch {
		case !info.IsDir():
			files = append(files, p)
		case candidate == name:
			isDir = true
		}
	}
	if !isDir {
		return files, nil
	}
	dir := filepath.Join(base, name)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		hidden := strings.HasPrefix(d.Name(), ".") && path != dir
		if d.IsDir() {
			if hidden {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".yml", ".yaml", ".json", "":
			if !hidden && !strings.HasSuffix(path, "~") {
				files = append(files, path)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read vars: %w", err)
	}
	return files, nil
}

// loadVarsFile reads a group_vars or host_vars file. An empty file sets
// nothing.
func loadVarsFile(s source, who string) (*layer, error) {
	data, err := yamlx.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("read vars: %w", err)
	}
	root, err := parseDocument(s.path, data)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return newLayer(), nil
	}
	return parseVars(s, root, who)
}

// deepCopy copies decoded YAML values so hosts never share mutable maps or
// slices.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, item := range v {
			out[k] = deepCopy(item)
		}
		return out
	case map[any]any:
		out := make(map[any]any, len(v))
		for k, item := range v {
			out[k] = deepCopy(item)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = deepCopy(item)
		}
		return out
	}
	return v
}

func copyVars(vars map[string]any) map[string]any {
	return deepCopy(vars).(map[string]any)
}
