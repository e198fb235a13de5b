package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/tmpl"
)

// taskVars builds a host's variables for one task. Precedence, lowest first,
// as Ansible's (lib/ansible/vars/manager.py, get_vars): role defaults (the
// play's roles', then the task's own role's), inventory (groups, then
// host), facts, play vars, role vars (likewise), task vars, registered
// results, the task's role parameters, extra vars.
func (r *run) taskVars(ctx context.Context, pb *playbooks.Playbook, play *playbooks.Play, h *hostRun, t *playbooks.Task) (map[string]any, error) {
	v := maps.Clone(h.inv.Vars)
	if v == nil {
		v = map[string]any{}
	}
	maps.Copy(v, h.inv.Magic())
	v["groups"] = r.groups
	v["hostvars"] = r.hostvars
	v["play_hosts"] = r.playHosts[play]
	v["ansible_play_hosts"] = r.playHosts[play]
	v["ansible_play_hosts_all"] = r.playHosts[play]
	v["omit"] = omitMarker
	v["check_mode"] = r.Check
	v["ansible_check_mode"] = r.Check
	if pb.Path != "" && !strings.HasPrefix(pb.Path, "embedded:") {
		v["playbook_dir"] = filepath.Dir(pb.Path)
	}
	roleNames := make([]any, 0, len(play.Roles))
	for _, role := range play.Roles {
		roleNames = append(roleNames, role.Name)
	}
	v["role_names"] = roleNames
	if t.Role != nil {
		v["role_name"], v["role_path"] = t.Role.Name, t.Role.Path
	}
	if h.facts != nil {
		v["facts"] = h.facts.Map()
	} else {
		// Not gathered (gather_facts: false, or not reachable yet): empty
		// facts, so conditions such as facts.rescue read as false.
		v["facts"] = (&facts.Facts{}).Map()
	}
	defaults, roleVars := roleLayers(play, t)
	// Play, role and task vars are rendered with everything else in place,
	// as Ansible renders lazily: their templates see registered results
	// and extra vars too. A role default is rendered only where nothing
	// else sets the variable.
	maps.Copy(v, h.vars)
	maps.Copy(v, r.ExtraVars)
	for k := range defaults {
		if _, set := v[k]; set || inAny(k, play.Vars, roleVars, t.Vars, roleParams(t)) {
			delete(defaults, k)
		}
	}
	for _, layer := range []struct {
		vars map[string]any
		what string
	}{{defaults, "role defaults"}, {play.Vars, "play vars"}, {roleVars, "role vars"}, {t.Vars, "task vars"}} {
		if err := r.renderInto(ctx, v, layer.vars, layer.what); err != nil {
			return nil, err
		}
	}
	maps.Copy(v, h.vars)
	if err := r.renderInto(ctx, v, roleParams(t), "role parameters"); err != nil {
		return nil, err
	}
	maps.Copy(v, r.ExtraVars)
	h.learnSecrets(v, defaults, play.Vars, roleVars, t.Vars, roleParams(t))
	return v, nil
}

// roleLayers merges the role defaults and the role vars a task sees: every
// role of the play's (Ansible's roles are public by default), its own
// role's on top.
func roleLayers(play *playbooks.Play, t *playbooks.Task) (defaults, vars map[string]any) {
	defaults, vars = map[string]any{}, map[string]any{}
	for _, role := range play.Roles {
		maps.Copy(defaults, role.Defaults)
		maps.Copy(vars, role.Vars)
	}
	if t.Role != nil {
		maps.Copy(defaults, t.Role.Defaults)
		maps.Copy(vars, t.Role.Vars)
	}
	return defaults, vars
}

func roleParams(t *playbooks.Task) map[string]any {
	if t.Role == nil {
		return nil
	}
	return t.Role.Params
}

func inAny(key string, layers ...map[string]any) bool {
	for _, l := range layers {
		if _, ok := l[key]; ok {
			return true
		}
	}
	return false
}

// renderInto renders each value of src with the variables so far and sets
// it in dst. A value that needs another value of src not rendered yet
// waits for it, so a var may build on any other of its layer (in key
// order where they do not depend on each other).
func (r *run) renderInto(ctx context.Context, dst, src map[string]any, what string) error {
	pending := slices.Sorted(maps.Keys(src))
	for len(pending) > 0 {
		var waiting []string
		var firstErr error
		for _, k := range pending {
			val, err := r.Templates.RenderValueContext(ctx, src[k], dst)
			if err != nil {
				if root := undefinedRoot(err); root != "" && root != k && slices.Contains(pending, root) {
					waiting = append(waiting, k)
					if firstErr == nil {
						firstErr = fmt.Errorf("%s: %s: %w", what, k, err)
					}
					continue
				}
				return fmt.Errorf("%s: %s: %w", what, k, err)
			}
			dst[k] = val
		}
		if len(waiting) == len(pending) {
			return firstErr // a cycle: each waits for another
		}
		pending = waiting
	}
	return nil
}

// allTrue evaluates Jinja conditions, ANDed.
func (r *run) allTrue(ctx context.Context, exprs []string, vars map[string]any, what string) (bool, error) {
	for _, e := range exprs {
		ok, err := r.Templates.TruthContext(ctx, e, vars)
		if err != nil {
			return false, fmt.Errorf("%s %q: %w", what, e, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// anyTrue evaluates failed_when conditions: a list fails when any holds.
func (r *run) anyTrue(ctx context.Context, exprs []string, vars map[string]any) (bool, error) {
	for _, e := range exprs {
		ok, err := r.Templates.TruthContext(ctx, e, vars)
		if err != nil {
			return false, fmt.Errorf("failed_when %q: %w", e, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

func (r *run) loopItems(ctx context.Context, t *playbooks.Task, vars map[string]any) ([]any, error) {
	v, err := r.Templates.RenderValueContext(ctx, t.Loop, vars)
	if err != nil {
		return nil, fmt.Errorf("loop: %w", err)
	}
	switch items := v.(type) {
	case []any:
		return items, nil
	case []string:
		out := make([]any, len(items))
		for i, s := range items {
			out[i] = s
		}
		return out, nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("loop: want a list, got %T", v)
}

// undefinedRoot returns the variable an undefined-variable error starts
// from ("who" for "who.stdout"), or "" for other errors.
func undefinedRoot(err error) string {
	var u *tmpl.UndefinedError
	if !errors.As(err, &u) {
		return ""
	}
	root := u.Name
	if i := strings.IndexAny(root, ".["); i >= 0 {
		root = root[:i]
	}
	return root
}

// registeredNames lists what the play's tasks register: the results a dry
// run does not have.
func registeredNames(play *playbooks.Play) map[string]bool {
	names := map[string]bool{}
	for _, t := range append(playbooks.Leaves(play.Tasks), play.Handlers...) {
		if t.Register != "" {
			names[t.Register] = true
		}
	}
	if hasRescue(play.Tasks) {
		names["ansible_failed_task"], names["ansible_failed_result"] = true, true
	}
	return names
}

func mergeVars(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]any{}
	}
	maps.Copy(out, b)
	return out
}

// selectTasks applies --tags, --skip-tags and --start-at-task (which spans
// plays: once found, later plays run whole). started reports whether the
// start task has been reached.
func (r *run) selectTasks(tasks []*playbooks.Task, started bool) ([]*playbooks.Task, bool) {
	out := playbooks.Filter(tasks, func(t *playbooks.Task) bool {
		if !started {
			if t.Name != r.StartAtTask {
				return false
			}
			started = true
		}
		return TagsSelect(t.Tags, r.Tags, r.SkipTags)
	})
	return out, started
}

// TagsSelect applies Ansible's tag rules: `always` runs unless skipped by
// name, `never` only when asked for by name, `tagged`/`untagged`/`all` as
// special selectors.
func TagsSelect(taskTags, only, skip []string) bool {
	has := func(sel []string) bool {
		for _, s := range sel {
			switch {
			case s == "all" && !slices.Contains(taskTags, "never"):
				return true
			case s == "tagged" && len(taskTags) > 0:
				return true
			case s == "untagged" && len(taskTags) == 0:
				return true
			case slices.Contains(taskTags, s):
				return true
			}
		}
		return false
	}
	if len(skip) > 0 && has(skip) {
		return false
	}
	if slices.Contains(taskTags, "always") {
		return true
	}
	if len(only) == 0 {
		return !slices.Contains(taskTags, "never")
	}
	return has(only)
}

// omitMarker is the value of `omit`: an argument whose template renders to it
// is dropped, so `{{ x | default(omit) }}` leaves the module's default, as in
// Ansible.
const omitMarker = "__nixbook_omit_argument__"

// pruneOmitted removes mapping entries whose value is the omit marker.
func pruneOmitted(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		kept := n.Content[:0:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := n.Content[i+1]; v.Kind == yaml.ScalarNode && v.Value == omitMarker {
				continue
			}
			kept = append(kept, n.Content[i], pruneOmitted(n.Content[i+1]))
		}
		n.Content = kept
	case yaml.SequenceNode:
		kept := n.Content[:0:0]
		for _, c := range n.Content {
			if c.Kind == yaml.ScalarNode && c.Value == omitMarker {
				continue
			}
			kept = append(kept, pruneOmitted(c))
		}
		n.Content = kept
	}
	return n
}
