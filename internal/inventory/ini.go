package inventory

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Ansible's INI inventory format, as lib/ansible/plugins/inventory/ini.py
// reads it:
//
//	host1                        # before any section: ungrouped
//	[web]
//	web[01:03] http_port=8080    # hosts with inline variables
//	db:2222 ansible_user=admin   # name:port
//	[web:vars]
//	proxy = http://proxy:3128    # one variable a line, everything after =
//	[infra:children]
//	web
//
// Values are read as Python literals where they are ones (22, 1.5, True,
// None, 'quoted', [lists], {dicts}), and as strings otherwise. Lines
// starting with # or ; are comments; on host lines, a # outside quotes
// starts one.

var (
	// The section and group name patterns of ini.py's _compile_patterns.
	iniSection   = regexp.MustCompile(`^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$`)
	iniGroupName = regexp.MustCompile(`^([^:\]\s]+)\s*(?:#.*)?$`)
	iniInt       = regexp.MustCompile(`^[-+]?(?:0|[1-9][0-9]*)$`)
	iniFloat     = regexp.MustCompile(`^[-+]?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)$`)
)

// isINI tells an INI inventory from a YAML one: by extension (.ini; .yml,
// .yaml and .json are YAML), else by content, YAML being a mapping.
func isINI(path string, data []byte) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".ini":
		return true
	case ".yml", ".yaml", ".json":
		return false
	}
	root, err := parseDocument(path, data)
	return err != nil || (root != nil && root.Kind != yaml.MappingNode)
}

// iniDecl is a group an INI section needs declared by the end of the file:
// one named by [g:vars] or under [parent:children] only.
type iniDecl struct {
	line    int
	vars    bool     // [g:vars]
	parents []string // [parent:children] naming g
}

func (l *loader) loadINI(path string, data []byte) error {
	s := source{path: path, dir: filepath.Dir(path)}
	at := func(line int) *yaml.Node { return &yaml.Node{Line: line} }
	errorf := func(line int, format string, args ...any) error {
		return &Error{File: path, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	declared := map[string]bool{}
	for name := range l.groups {
		declared[name] = true
	}
	pending := map[string]*iniDecl{}
	var pendingOrder []string
	group, state := ungroupedGroup, "hosts"
	var vars *yaml.Node // the [group:vars] section being read
	flushVars := func() error {
		if vars == nil {
			return nil
		}
		lay, err := parseVars(s, vars, "group "+group)
		if err != nil {
			return err
		}
		l.groups[group].inline = append(l.groups[group].inline, lay)
		vars = nil
		return nil
	}

	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), len(data)+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if !utf8.ValidString(line) {
			// As ini.py, which decodes every line but comments.
			return errorf(n, "not valid UTF-8")
		}
		if m := iniSection.FindStringSubmatch(line); m != nil {
			if err := flushVars(); err != nil {
				return err
			}
			group, state = m[1], m[2]
			if state == "" {
				state = "hosts"
			}
			if state != "hosts" && state != "vars" && state != "children" {
				return errorf(n, "section [%s:%s] has unknown type %q (want hosts, vars or children)", group, state, state)
			}
			if _, err := groupName(s, &yaml.Node{Kind: yaml.ScalarNode, Value: group, Line: n}); err != nil {
				return err
			}
			l.group(group, fmt.Sprintf("%s:%d", path, n))
			if state == "vars" {
				if !declared[group] && pending[group] == nil {
					pending[group] = &iniDecl{line: n, vars: true}
					pendingOrder = append(pendingOrder, group)
				}
				vars = &yaml.Node{Kind: yaml.MappingNode, Line: n}
				continue
			}
			declared[group] = true
			continue
		}
		if line[0] == '[' && line[len(line)-1] == ']' {
			return errorf(n, "invalid section %s: a section is [group], [group:vars] or [group:children], without spaces", line)
		}
		switch state {
		case "hosts":
			if err := l.iniHosts(s, n, group, line); err != nil {
				return err
			}
		case "vars":
			key, value, ok := strings.Cut(line, "=")
			key = strings.TrimSpace(key)
			if !ok || key == "" {
				return errorf(n, "group %s: want key=value, got %q", group, line)
			}
			if err := appendVar(vars, key, iniValue(strings.TrimSpace(value)), n); err != nil {
				return errorf(n, "group %s: %s: %v", group, key, err)
			}
		case "children":
			m := iniGroupName.FindStringSubmatch(line)
			if m == nil {
				return errorf(n, "group %s: want a group name, got %q", group, line)
			}
			child := m[1]
			if _, err := groupName(s, &yaml.Node{Kind: yaml.ScalarNode, Value: child, Line: n}); err != nil {
				return err
			}
			d := pending[child]
			if d == nil {
				d = &iniDecl{line: n}
				pending[child] = d
				pendingOrder = append(pendingOrder, child)
			}
			d.parents = append(d.parents, group)
			if d.line == 0 || d.vars {
				d.line = n
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	if err := flushVars(); err != nil {
		return err
	}
	// Children link once every section is read: a child group may be
	// declared below the [parent:children] that names it.
	for _, name := range pendingOrder {
		d := pending[name]
		if !declared[name] {
			if len(d.parents) > 0 {
				return errorf(d.line, "section [%s:children] names group %q, which no section declares", d.parents[len(d.parents)-1], name)
			}
			return errorf(d.line, "section [%s:vars] is for group %q, which no section declares", name, name)
		}
		for _, parent := range d.parents {
			if err := l.link(s, at(d.line), parent, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// iniHosts reads one host line of a [group] section.
func (l *loader) iniHosts(s source, n int, group, line string) error {
	words, err := splitShellWords(line, true)
	if err != nil {
		return &Error{File: s.path, Line: n, Msg: fmt.Sprintf("group %s: %v", group, err)}
	}
	if len(words) == 0 {
		return nil
	}
	pattern := words[0]
	errorf := func(format string, args ...any) error {
		return &Error{File: s.path, Line: n, Msg: fmt.Sprintf("group %s: host %q: ", group, pattern) + fmt.Sprintf(format, args...)}
	}
	if strings.HasSuffix(pattern, ":") {
		return errorf("a host cannot end in ':', which introduces a port")
	}
	base, port, err := splitHostPort(pattern)
	if err != nil {
		return errorf("%v", err)
	}
	names, err := expandHostRange(base)
	if err != nil {
		return errorf("%v", err)
	}
	if len(l.hosts)+len(names) > MaxHosts {
		return errorf("the inventory would hold more than %d hosts", MaxHosts)
	}
	for _, name := range names {
		if err := checkHostName(name); err != nil {
			return errorf("%v", err)
		}
	}
	node := &yaml.Node{Kind: yaml.MappingNode, Line: n}
	for _, w := range words[1:] {
		key, value, ok := strings.Cut(w, "=")
		if !ok || key == "" {
			return errorf("want key=value after the host name, got %q", w)
		}
		if err := appendVar(node, key, iniValue(value), n); err != nil {
			return errorf("%s: %v", key, err)
		}
	}
	vars, err := parseVars(s, node, "host "+pattern)
	if err != nil {
		return err
	}
	l.addHosts(l.group(group, ""), names, port, vars, fmt.Sprintf("%s:%d", s.path, n))
	return nil
}

// appendVar adds key: value to a mapping node, every node on line.
func appendVar(m *yaml.Node, key string, value any, line int) error {
	var v yaml.Node
	if err := v.Encode(value); err != nil {
		return err
	}
	setLine(&v, line)
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key, Line: line}, &v)
	return nil
}

func setLine(n *yaml.Node, line int) {
	n.Line = line
	for _, c := range n.Content {
		setLine(c, line)
	}
}

// iniValue reads a value as ini.py's _parse_value does: a Python literal
// when it is one (ast.literal_eval, which also drops a trailing # comment),
// the text as it is otherwise.
func iniValue(raw string) any {
	if v, ok := pythonLiteral(raw); ok {
		return v
	}
	if i := strings.IndexByte(raw, '#'); i > 0 {
		if v, ok := pythonLiteral(strings.TrimSpace(raw[:i])); ok {
			return v
		}
	}
	return raw
}

// pythonLiteral reads the literals INI inventories use: integers, floats,
// True, False, None, quoted strings, and lists and dicts (read as YAML flow
// collections, which they are close to).
func pythonLiteral(s string) (any, bool) {
	switch s {
	case "True":
		return true, true
	case "False":
		return false, true
	case "None":
		return nil, true
	case "":
		return nil, false
	}
	if iniInt.MatchString(s) {
		if i, err := strconv.Atoi(s); err == nil {
			return i, true
		}
		return nil, false
	}
	if iniFloat.MatchString(s) {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f, true
		}
		return nil, false
	}
	if q := s[0]; (q == '\'' || q == '"') && len(s) >= 2 && s[len(s)-1] == q {
		return pythonString(s[1:len(s)-1], q)
	}
	if (s[0] == '[' && s[len(s)-1] == ']') || (s[0] == '{' && s[len(s)-1] == '}') {
		var v any
		if err := yaml.Unmarshal([]byte(s), &v); err == nil && v != nil {
			return v, true
		}
	}
	return nil, false
}

// pythonString unescapes the body of a quoted Python string; a bare quote
// of the same kind inside means it was not one string.
func pythonString(body string, quote byte) (any, bool) {
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == quote:
			return nil, false
		case c == '\\' && i+1 < len(body):
			i++
			switch e := body[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case '\\', '\'', '"':
				b.WriteByte(e)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}
