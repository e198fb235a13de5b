package playbooks

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/yamlx"
)

// Role is one use of a role: roles/NAME beside the playbook, read when the
// playbook loads. Its variables rank as Ansible's
// (lib/ansible/vars/manager.py, get_vars): Defaults below every other
// variable, inventory included; Vars above play vars and below task vars;
// Params above registered results and below extra vars.
type Role struct {
	Name string
	Path string // the role's directory, for role_path and its files/ and templates/
	// Defaults are defaults/main.yml.
	Defaults map[string]any
	// Vars are vars/main.yml, then the vars: of the entry that uses the role.
	Vars map[string]any
	// Params are the other keys of a roles: entry ({role: x, port: 80}).
	Params map[string]any
}

// roleEntryKeys are the keywords of a roles: entry (other keys are the
// role's parameters, as in Ansible) and of import_role/include_role.
var (
	roleEntryKeys  = []string{"role", "name", "vars", "when", "tags"}
	importRoleKeys = []string{"name", "import_role", "include_role", "when", "tags", "vars", "ignore_errors", "no_log"}
	importRoleArgs = []string{"name", "tasks_from", "defaults_from", "vars_from", "handlers_from"}
)

// roleUse is one roles: entry, import_role or meta dependency, before its
// files are read.
type roleUse struct {
	name   string
	at     *yaml.Node // where it is named, for messages
	vars   map[string]any
	params map[string]any
	when   []string
	tags   []string
	from   map[string]string // tasks_from, handlers_from, ... by subdirectory
}

// key tells two uses of a role apart: Ansible runs a role once per play
// for the same parameters (lib/ansible/playbook/role/__init__.py,
// has_run/allow_duplicates).
func (u roleUse) key() string {
	b, _ := yaml.Marshal([]any{u.name, u.vars, u.params, u.from})
	return string(b)
}

// roleSet is what a play's roles brought so far.
type roleSet struct {
	roles    []*Role
	seen     map[string]bool
	handlers []*Task
	metas    []*taskMeta // of the handlers, for notify checks
	// handlerFiles are the handler files read, by path.
	handlerFiles map[string]bool
	active       []string // directories of the roles being read, for dependency cycles
	activeNames  []string // their names
	// private is set while an include_role is read: its roles' defaults
	// and vars are for their own tasks (Ansible's public: false).
	private bool
}

// playRoles reads a play's roles: list: each role's dependencies' tasks,
// then its own, in order, before the play's tasks.
func (l *loader) playRoles(n *yaml.Node, rs *roleSet) ([]*Task, []*taskMeta) {
	if n == nil || isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, "roles", "want a list of roles, got %s", yamlx.Describe(n))
		return nil, nil
	}
	var tasks []*Task
	var metas []*taskMeta
	for i, c := range n.Content {
		u, ok := l.roleEntry(deref(c), fmt.Sprintf("roles[%d]", i))
		if !ok {
			continue
		}
		t, m := l.useRole(u, rs, false)
		tasks = append(tasks, t...)
		metas = append(metas, m...)
	}
	return tasks, metas
}

// roleEntry reads a roles: entry (or a meta dependency): a name, or a
// mapping with role (or name), vars, when, tags and parameters.
func (l *loader) roleEntry(n *yaml.Node, key string) (roleUse, bool) {
	u := roleUse{at: n}
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		u.name = n.Value
		return u, l.checkRoleName(n, key, u.name)
	}
	if n.Kind != yaml.MappingNode {
		l.errorf(n, key, "want a role name or a mapping with role, got %s", yamlx.Describe(n))
		return u, false
	}
	var nameNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		switch k.Value {
		case "role", "name":
			nameNode = v
			u.name = l.str(v, yamlx.Join(key, k.Value))
		case "vars":
			u.vars = l.vars(v, yamlx.Join(key, "vars"))
		case "when":
			u.when = l.conditions(v, yamlx.Join(key, "when"))
		case "tags":
			u.tags = l.strings(v, yamlx.Join(key, "tags"), true)
		default:
			if !identifier.MatchString(k.Value) {
				l.errorf(k, key, "%q is neither a keyword of a role (%s) nor a valid parameter name", k.Value, strings.Join(roleEntryKeys, ", "))
				continue
			}
			var val any
			if err := yamlx.Decode(l.file, v, &val); err != nil {
				l.add(err)
				continue
			}
			l.checkTemplates(l.file, v, yamlx.Join(key, k.Value))
			if u.params == nil {
				u.params = map[string]any{}
			}
			u.params[k.Value] = val
		}
	}
	if nameNode == nil {
		l.errorf(n, key, "a role entry needs role: NAME")
		return u, false
	}
	return u, l.checkRoleName(nameNode, key, u.name)
}

func (l *loader) checkRoleName(n *yaml.Node, key, name string) bool {
	switch {
	case name == "":
		l.errorf(n, key, "want a role name, got %s", yamlx.Describe(n))
		return false
	case tmpl.IsTemplate(name):
		l.errorf(n, key, "role names with templates are not supported: %q (roles are read when the playbook loads)", name)
		return false
	}
	return true
}

// rolePath finds a role as Ansible does for a playbook's roles: roles/NAME
// beside the playbook, then NAME beside it; a name with a slash is a path.
func (l *loader) rolePath(name string) (string, []string) {
	var candidates []string
	switch {
	case filepath.IsAbs(name):
		candidates = []string{name}
	case strings.Contains(name, "/"):
		candidates = []string{filepath.Join(l.playbookDir, name)}
	default:
		candidates = []string{filepath.Join(l.playbookDir, "roles", name), filepath.Join(l.playbookDir, name)}
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			return c, candidates
		}
	}
	return "", candidates
}

// useRole reads a role's files and returns its tasks (its dependencies'
// first), each tied to the role and inheriting the entry's when and tags.
// The role's handlers join rs. A role used again with the same
// parameters adds nothing, unless asked for by import_role or
// include_role, which always bring the role's tasks.
func (l *loader) useRole(u roleUse, rs *roleSet, always bool) ([]*Task, []*taskMeta) {
	dir, looked := l.rolePath(u.name)
	if dir == "" {
		l.errorf(u.at, "", "role %q not found (looked in %s)", u.name, strings.Join(looked, ", "))
		return nil, nil
	}
	if i := slices.Index(rs.active, dir); i >= 0 {
		l.errorf(u.at, "", "role %q depends on itself (through %s)", u.name, strings.Join(rs.activeNames[i:], ", "))
		return nil, nil
	}
	if len(rs.active) >= maxImportDepth {
		l.errorf(u.at, "", "role dependencies nest more than %d deep", maxImportDepth)
		return nil, nil
	}
	if rs.seen == nil {
		rs.seen = map[string]bool{}
	}
	if rs.seen[u.key()] && !always {
		return nil, nil
	}
	rs.seen[u.key()] = true
	rs.active, rs.activeNames = append(rs.active, dir), append(rs.activeNames, u.name)
	defer func() {
		rs.active, rs.activeNames = rs.active[:len(rs.active)-1], rs.activeNames[:len(rs.activeNames)-1]
	}()

	role := &Role{Name: filepath.Base(u.name), Path: dir, Params: u.params}
	if abs, err := filepath.Abs(dir); err == nil {
		role.Path = abs // role_path is absolute, as in Ansible
	}
	file := func(sub string) (string, bool) { return l.roleFile(u, dir, sub) }
	if p, ok := file("defaults"); ok {
		role.Defaults = l.varsFromFile(p)
	}
	if p, ok := file("vars"); ok {
		role.Vars = l.varsFromFile(p)
	}
	if u.vars != nil {
		if role.Vars == nil {
			role.Vars = map[string]any{}
		}
		for k, v := range u.vars {
			role.Vars[k] = v
		}
	}

	var tasks []*Task
	var metas []*taskMeta
	if p, ok := file("meta"); ok {
		deps, depMetas := l.roleDependencies(p, rs)
		tasks, metas = append(tasks, deps...), append(metas, depMetas...)
	}
	var own []*Task
	if p, ok := file("tasks"); ok {
		var m []*taskMeta
		own, m = l.roleTasks(p, false)
		metas = append(metas, m...)
	} else if u.from["tasks"] != "" {
		l.errorf(u.at, "tasks_from", "role %q has no tasks/%s", u.name, u.from["tasks"])
	}
	if p, ok := file("handlers"); ok && !rs.handlerFiles[p] {
		// A role used twice has its handlers once.
		if rs.handlerFiles == nil {
			rs.handlerFiles = map[string]bool{}
		}
		rs.handlerFiles[p] = true
		handlers, m := l.roleTasks(p, true)
		for _, h := range Leaves(handlers) {
			if h.Role == nil {
				h.Role = role
				if h.Name != "" {
					// Ansible also answers to "ROLE : NAME".
					h.Listen = append(h.Listen, role.Name+" : "+h.Name)
				}
			}
		}
		rs.handlers = append(rs.handlers, handlers...)
		rs.metas = append(rs.metas, m...)
	}
	if !rs.private {
		rs.roles = append(rs.roles, role)
	}

	for _, t := range Leaves(own) {
		if t.Role == nil { // a role its tasks import keeps its own
			t.Role = role
		}
	}
	tasks = append(tasks, own...)
	wrapper := &Task{Block: &Block{Tasks: tasks}, When: u.when, Tags: u.tags}
	l.inherit(wrapper, nil, nil)
	return wrapper.Block.Tasks, metas
}

// roleFile finds a role's file of one subdirectory: main.yml, main.yaml or
// main (or the name a *_from argument gives, with those extensions).
func (l *loader) roleFile(u roleUse, dir, sub string) (string, bool) {
	base := "main"
	if from := u.from[sub]; from != "" {
		base = from
	}
	for _, name := range []string{base, base + ".yml", base + ".yaml"} {
		p := filepath.Join(dir, sub, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, true
		}
	}
	if base != "main" {
		l.errorf(u.at, "", "role %q has no %s/%s", u.name, sub, base)
	}
	return "", false
}

// roleTasks reads a role's tasks or handlers file, a list of tasks.
func (l *loader) roleTasks(path string, handlers bool) ([]*Task, []*taskMeta) {
	root, ok := l.readYAML(path)
	if !ok || root == nil {
		return nil, nil
	}
	var tasks []*Task
	var metas []*taskMeta
	l.within(path, func() {
		tasks, metas = l.tasks(root, "", handlers)
	})
	return tasks, metas
}

// varsFromFile reads a role's defaults or vars file, a mapping.
func (l *loader) varsFromFile(path string) map[string]any {
	root, ok := l.readYAML(path)
	if !ok {
		return nil
	}
	return l.varsOf(path, root)
}

// varsOf checks and decodes the root of a vars file: nil when it is empty
// or wrong (reported).
func (l *loader) varsOf(path string, root *yaml.Node) map[string]any {
	if root == nil {
		return nil // an empty file defines nothing
	}
	if root.Kind != yaml.MappingNode {
		l.add(yamlx.Errorf(path, root, "", "a vars file is a mapping of variables, got %s", yamlx.Describe(root)))
		return nil
	}
	vars := map[string]any{}
	if err := yamlx.Decode(path, root, &vars); err != nil {
		l.add(err)
		return nil
	}
	l.checkVarNames(path, root, "")
	l.checkTemplates(path, root, "")
	return vars
}

// roleDependencies reads meta/main.yml's dependencies: roles whose tasks
// run before the role's own.
func (l *loader) roleDependencies(path string, rs *roleSet) ([]*Task, []*taskMeta) {
	root, ok := l.readYAML(path)
	if !ok || root == nil {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		l.add(yamlx.Errorf(path, root, "", "meta/main.yml is a mapping, got %s", yamlx.Describe(root)))
		return nil, nil
	}
	var tasks []*Task
	var metas []*taskMeta
	l.within(path, func() {
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], deref(root.Content[i+1])
			if k.Value != "dependencies" || isNull(v) {
				continue // galaxy_info and the rest say nothing about a run
			}
			if v.Kind != yaml.SequenceNode {
				l.errorf(v, "dependencies", "want a list of roles, got %s", yamlx.Describe(v))
				continue
			}
			for j, c := range v.Content {
				u, ok := l.roleEntry(deref(c), fmt.Sprintf("dependencies[%d]", j))
				if !ok {
					continue
				}
				t, m := l.useRole(u, rs, false)
				tasks, metas = append(tasks, t...), append(metas, m...)
			}
		}
	})
	return tasks, metas
}

// readYAML reads and parses a file of a role; nil for an empty file.
func (l *loader) readYAML(path string) (*yaml.Node, bool) {
	root, err := l.parseFile(path)
	if err != nil {
		if !errors.Is(err, errParse) {
			l.add(fmt.Errorf("%s: %w", path, err))
		}
		return nil, false
	}
	return root, true
}

// importRole reads import_role and include_role: the role's tasks take the
// entry's place, read when the playbook loads, inheriting its when, tags,
// vars, ignore_errors and no_log as a block's tasks do; its handlers join
// the play's. include_role is read statically too (see include).
func (l *loader) importRole(n *yaml.Node, rs *roleSet) ([]*Task, []*taskMeta) {
	kw, t, args, ignoreErrors, noLog := l.importEntry(n, importRoleKeys, "import_role", "include_role")
	u := roleUse{at: n, from: map[string]string{}}
	if args.Kind != yaml.MappingNode {
		l.errorf(args, kw, "want a mapping with name: ROLE, got %s", yamlx.Describe(args))
		return nil, nil
	}
	var nameNode *yaml.Node
	for i := 0; i+1 < len(args.Content); i += 2 {
		k, v := args.Content[i], deref(args.Content[i+1])
		key := yamlx.Join(kw, k.Value)
		switch k.Value {
		case "name":
			nameNode, u.name = v, l.str(v, key)
		case "tasks_from", "defaults_from", "vars_from", "handlers_from":
			from := l.str(v, key)
			if tmpl.IsTemplate(from) || strings.Contains(from, "..") {
				l.errorf(v, key, "want a file name in the role, got %q", from)
				continue
			}
			u.from[strings.TrimSuffix(k.Value, "_from")] = from
		default:
			l.errorf(k, kw, "%s", yamlx.UnknownKey(k.Value, importRoleArgs))
		}
	}
	if nameNode == nil {
		l.errorf(args, kw, "missing required key %q", "name")
		return nil, nil
	}
	if !l.checkRoleName(nameNode, yamlx.Join(kw, "name"), u.name) {
		return nil, nil
	}
	private := rs.private
	rs.private = private || kw == "include_role"
	tasks, metas := l.useRole(u, rs, true)
	rs.private = private
	t.Block.Tasks = tasks
	l.inherit(t, ignoreErrors, noLog)
	return t.Block.Tasks, metas
}
