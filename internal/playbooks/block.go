package playbooks

import (
	"maps"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/yamlx"
)

// blockKeys are the keywords a block accepts.
var blockKeys = []string{"name", "block", "rescue", "always", "when", "tags", "ignore_errors", "vars", "no_log"}

// isBlock reports whether a task mapping is a block: it has a block or an
// always key, or a rescue holding a list of tasks (a rescue holding a
// mapping is the rescue module). The block reports a rescue or always
// without a block.
func isBlock(n *yaml.Node) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "block", "always":
			return true
		case "rescue":
			if deref(n.Content[i+1]).Kind == yaml.SequenceNode {
				return true
			}
		}
	}
	return false
}

// block reads a block. Its when, tags, vars, ignore_errors and no_log are
// copied onto the tasks it holds, as Ansible's tasks inherit them from
// their parent block (lib/ansible/playbook/block.py, _get_parent_attribute):
// conditions are ANDed, the block's first; tags add up; the task's own vars
// and ignore_errors win.
func (l *loader) block(n *yaml.Node, handler bool) (*Task, []*taskMeta) {
	t := &Task{Source: l.source(n), Block: &Block{}}
	if handler {
		l.errorf(n, "", "a handler cannot be a block")
		return nil, nil
	}
	var sections [3]*yaml.Node
	var ignoreErrors, noLog *bool
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		switch k.Value {
		case "name":
			t.Name = l.str(v, "name")
			l.checkTemplate(v, "name")
		case "block":
			sections[0] = v
		case "rescue":
			sections[1] = v
		case "always":
			sections[2] = v
		case "when":
			t.When = l.conditions(v, "when")
		case "tags":
			t.Tags = l.strings(v, "tags", true)
		case "ignore_errors":
			b := l.bool(v, "ignore_errors")
			ignoreErrors, t.IgnoreErrors = &b, b
		case "no_log":
			b := l.bool(v, "no_log")
			noLog, t.NoLog = &b, b
		case "vars":
			t.Vars = l.vars(v, "vars")
		default:
			l.errorf(k, "", "%s", yamlx.UnknownKey(k.Value, blockKeys))
		}
	}
	if sections[0] == nil {
		l.errorf(n, "", "rescue and always need a block")
		return nil, nil
	}
	var metas []*taskMeta
	l.nested++
	defer func() { l.nested-- }()
	lists := []*[]*Task{&t.Block.Tasks, &t.Block.Rescue, &t.Block.Always}
	for i, key := range []string{"block", "rescue", "always"} {
		tasks, m := l.tasks(sections[i], key, false)
		*lists[i] = tasks
		metas = append(metas, m...)
	}
	if len(t.Block.Tasks) == 0 && isNull(sections[0]) {
		l.errorf(sections[0], "block", "want a list of tasks, got %s", yamlx.Describe(sections[0]))
	}
	l.inherit(t, ignoreErrors, noLog)
	return t, metas
}

// inherit copies a block's when, tags, vars, ignore_errors and no_log onto
// the tasks it holds; ignoreErrors and noLog are nil when the block does
// not set them.
func (l *loader) inherit(t *Task, ignoreErrors, noLog *bool) {
	for _, leaf := range Leaves([]*Task{t}) {
		if len(t.When) > 0 {
			leaf.When = append(slices.Clone(t.When), leaf.When...)
		}
		for _, tag := range t.Tags {
			if !slices.Contains(leaf.Tags, tag) {
				leaf.Tags = append(leaf.Tags, tag)
			}
		}
		if t.Vars != nil {
			vars := maps.Clone(t.Vars)
			maps.Copy(vars, leaf.Vars)
			leaf.Vars = vars
		}
		if ignoreErrors != nil && !l.ignoreSet[leaf] {
			leaf.IgnoreErrors = *ignoreErrors
			l.ignoreSet[leaf] = true
		}
		if noLog != nil && !l.noLogSet[leaf] {
			leaf.NoLog = *noLog
			l.noLogSet[leaf] = true
		}
	}
}
