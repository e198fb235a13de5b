package playbooks

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	pathpkg "path"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/yamlx"
)

// includeKeys are the keywords an import_tasks or include_tasks entry accepts.
var includeKeys = []string{"name", "import_tasks", "include_tasks", "when", "tags", "vars", "ignore_errors", "no_log"}

// maxImportDepth bounds files importing files.
const maxImportDepth = 16

// importKey finds the import keyword of a mapping among names (with or
// without an ansible.builtin. or ansible.legacy. prefix): its short name
// and value.
func importKey(n *yaml.Node, names ...string) (string, *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		for _, prefix := range []string{"ansible.builtin.", "ansible.legacy."} {
			k = strings.TrimPrefix(k, prefix)
		}
		if slices.Contains(names, k) {
			return k, deref(n.Content[i+1])
		}
	}
	return "", nil
}

// include reads import_tasks and include_tasks: the file's tasks, read at
// load time, take the entry's place, inheriting its when, tags, vars,
// ignore_errors and no_log as a block's tasks do. include_tasks is read
// statically too, so its when is evaluated for each task (Ansible's
// include_tasks evaluates it once) and it takes no loop.
func (l *loader) include(n *yaml.Node, handler bool) ([]*Task, []*taskMeta) {
	kw, t, file, ignoreErrors, noLog := l.importEntry(n, includeKeys, "import_tasks", "include_tasks")
	if v := deref(file); v.Kind == yaml.MappingNode {
		if _, f := importKey(v, "file"); f != nil && len(v.Content) == 2 {
			file = f
		}
	}
	root, path, ok := l.readImport(file, kw)
	if !ok {
		return nil, nil
	}
	var metas []*taskMeta
	l.within(path, func() {
		t.Block.Tasks, metas = l.tasks(root, "", handler)
	})
	l.inherit(t, ignoreErrors, noLog)
	return t.Block.Tasks, metas
}

// importEntry reads an import_tasks, include_tasks, import_role or
// include_role entry (its keyword among names): the keywords it shares
// with a block go on t, which holds the imported tasks; arg is the
// keyword's value; ignoreErrors and noLog are nil when not set.
func (l *loader) importEntry(n *yaml.Node, keys []string, names ...string) (kw string, t *Task, arg *yaml.Node, ignoreErrors, noLog *bool) {
	kw, arg = importKey(n, names...)
	t = &Task{Source: l.source(n), Block: &Block{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if short, _ := importKey(&yaml.Node{Content: []*yaml.Node{k, v}}, names...); short != "" {
			continue
		}
		switch k.Value {
		case "name":
			t.Name = l.str(v, "name")
		case "when":
			t.When = l.conditions(v, "when")
		case "tags":
			t.Tags = l.strings(v, "tags", true)
		case "vars":
			t.Vars = l.vars(v, "vars")
		case "ignore_errors":
			b := l.bool(v, "ignore_errors")
			ignoreErrors = &b
		case "no_log":
			b := l.bool(v, "no_log")
			noLog = &b
		case "loop", "with_items":
			l.errorf(k, "", "%s is read once, when the playbook loads: it takes no %s", kw, k.Value)
		default:
			l.errorf(k, "", "%s", yamlx.UnknownKey(k.Value, keys))
		}
	}
	return kw, t, arg, ignoreErrors, noLog
}

// importPlaybook reads an import_playbook entry: the plays of the file.
func (l *loader) importPlaybook(n *yaml.Node) []*Play {
	var file *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if short, _ := importKey(&yaml.Node{Content: []*yaml.Node{k, v}}, "import_playbook"); short != "" {
			file = v
			continue
		}
		if k.Value != "name" {
			l.errorf(k, "", "%s", yamlx.UnknownKey(k.Value, []string{"name", "import_playbook"}))
		}
	}
	root, path, ok := l.readImport(file, "import_playbook")
	if !ok {
		return nil
	}
	var plays []*Play
	l.within(path, func() {
		if root.Kind != yaml.SequenceNode {
			l.errorf(root, "", "a playbook is a list of plays, got %s", yamlx.Describe(root))
			return
		}
		for _, pn := range root.Content {
			plays = append(plays, l.playOrImport(deref(pn))...)
		}
	})
	return plays
}

// playOrImport reads one entry of a playbook: a play, or the plays an
// import_playbook brings.
func (l *loader) playOrImport(n *yaml.Node) []*Play {
	if n.Kind == yaml.MappingNode {
		if kw, _ := importKey(n, "import_playbook"); kw != "" {
			return l.importPlaybook(n)
		}
	}
	if p := l.play(n); p != nil {
		return []*Play{p}
	}
	return nil
}

// readImport reads the file an import names, relative to the directory of
// the file being read. A missing, empty or cyclic file is reported.
func (l *loader) readImport(file *yaml.Node, kw string) (*yaml.Node, string, bool) {
	if file.Kind != yaml.ScalarNode || isNull(file) || file.Value == "" {
		l.errorf(file, kw, "want a file name, got %s", yamlx.Describe(file))
		return nil, "", false
	}
	if tmpl.IsTemplate(file.Value) {
		l.errorf(file, kw, "file names with templates are not supported: %q (imports are read when the playbook loads)", file.Value)
		return nil, "", false
	}
	path := file.Value
	switch {
	case strings.HasPrefix(l.file, EmbeddedPrefix):
		// A stock playbook imports stock files: they ship with it.
		path = EmbeddedPrefix + pathpkg.Join(pathpkg.Dir(strings.TrimPrefix(l.file, EmbeddedPrefix)), path)
	case !filepath.IsAbs(path):
		path = filepath.Join(l.baseDir, path)
	}
	if slices.Contains(l.importing, path) {
		l.errorf(file, kw, "%s imports itself (through %s)", path, strings.Join(l.importing, ", "))
		return nil, "", false
	}
	if len(l.importing) >= maxImportDepth {
		l.errorf(file, kw, "imports nest more than %d deep", maxImportDepth)
		return nil, "", false
	}
	root, err := l.parseFile(path)
	if err != nil {
		if !errors.Is(err, errParse) {
			l.errorf(file, kw, "cannot read %s: %v", path, err)
		}
		return nil, "", false
	}
	if root == nil {
		l.add(fmt.Errorf("%s: the file is empty", path))
		return nil, "", false
	}
	return root, path, true
}

// errParse marks a file parseFile could read but not parse; the parse
// error itself is already reported.
var errParse = errors.New("parse error")

// parseFile reads and parses a YAML file, a stock one when path has the
// EmbeddedPrefix: nil for an empty one. A parse error is reported here and
// returned as errParse; a read error is returned for the caller to place.
func (l *loader) parseFile(path string) (*yaml.Node, error) {
	var data []byte
	var err error
	if name, ok := strings.CutPrefix(path, EmbeddedPrefix); ok {
		data, err = stock.ReadFile(name)
	} else {
		data, err = yamlx.ReadFile(path)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, err
	}
	l.read[path] = sha256.Sum256(data)
	root, err := yamlx.Parse(path, data)
	if err != nil {
		l.add(err)
		return nil, errParse
	}
	return deref(root), nil
}

// within reads another file: messages and sources name it, and relative
// paths in it resolve against its directory.
func (l *loader) within(path string, read func()) {
	file, dir := l.file, l.baseDir
	l.file, l.baseDir = path, filepath.Dir(path)
	l.importing = append(l.importing, path)
	defer func() {
		l.file, l.baseDir = file, dir
		l.importing = l.importing[:len(l.importing)-1]
	}()
	read()
}
