package playbooks

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/yamlx"
)

// playKeys and taskKeys are the keywords a play and a task accept, in the
// order `nixbook doc` would list them.
var (
	playKeys = []string{"name", "hosts", "vars", "vars_files", "gather_facts", "serial",
		"max_fail_percentage", "any_errors_fatal", "pre_tasks", "roles", "tasks", "post_tasks", "handlers"}
	taskKeys = []string{"name", "when", "register", "loop", "loop_control", "retries", "until",
		"delay", "ignore_errors", "tags", "timeout", "no_log", "notify", "changed_when",
		"failed_when", "chroot", "vars", "listen", "run_once", "check_mode", "delegate_to"}
)

// Ansible's defaults for retried tasks.
const (
	defaultRetries = 3
	defaultDelay   = 5 * time.Second
)

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Load reads and validates the playbook at path. Every problem found in the
// file is reported, each as "file:line: message", joined into one error.
func Load(path string, reg *modules.Registry) (*Playbook, error) {
	data, err := yamlx.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read playbook: %w", err)
	}
	return LoadBytes(path, data, filepath.Dir(path), reg)
}

// LoadBytes validates a playbook held in memory. name is used in messages
// and as the playbook's Path; baseDir is where relative vars_files are
// looked up (the working directory when empty).
func LoadBytes(name string, data []byte, baseDir string, reg *modules.Registry) (*Playbook, error) {
	root, err := yamlx.Parse(name, data)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, fmt.Errorf("%s: the playbook is empty", name)
	}
	root = deref(root)
	if root.Kind != yaml.SequenceNode {
		return nil, yamlx.Errorf(name, root, "", "a playbook is a list of plays, got %s", yamlx.Describe(root))
	}
	if len(root.Content) == 0 {
		return nil, yamlx.Errorf(name, root, "", "the playbook has no plays")
	}
	l := &loader{file: name, baseDir: baseDir, reg: reg, engine: tmpl.New(), ignoreSet: map[*Task]bool{}, noLogSet: map[*Task]bool{}, importing: []string{filepath.Clean(name)},
		read: map[string][32]byte{name: sha256.Sum256(data)}}
	pb := &Playbook{Path: name, Dir: baseDir}
	for _, n := range root.Content {
		pb.Plays = append(pb.Plays, l.playOrImport(deref(n))...)
	}
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	pb.Faults = l.faults
	pb.Digest = digestFiles(l.read)
	return pb, nil
}

// digestFiles digests files (path → content's sha256) in path order.
func digestFiles(files map[string][32]byte) string {
	sum := sha256.New()
	for _, path := range slices.Sorted(maps.Keys(files)) {
		content := files[path]
		fmt.Fprintf(sum, "%d:%s", len(path), path)
		sum.Write(content[:])
	}
	return fmt.Sprintf("sha256:%x", sum.Sum(nil))
}

type loader struct {
	file    string
	baseDir string
	reg     *modules.Registry
	engine  *tmpl.Engine
	errs    []error
	faults  []error // see Playbook.Faults

	taskCount int // tasks and handlers so far, against MaxTasks

	// ignoreSet and noLogSet are the tasks that set ignore_errors and
	// no_log themselves: an enclosing block does not override them.
	ignoreSet, noLogSet map[*Task]bool
	importing           []string            // the files being imported, outermost first
	read                map[string][32]byte // every file read, with its content's sha256

	playbookDir string   // the directory of the playbook file of the play being read, where roles/ is
	roles       *roleSet // the roles of the play being read
	// section numbers the stretches of the play's tasks between handler
	// flushes (see Task.Section); nested counts the blocks being read.
	section, nested int
}

// MaxTasks bounds the tasks and handlers of a playbook, all plays together.
const MaxTasks = 10000

func (l *loader) errorf(n *yaml.Node, key, format string, args ...any) {
	l.errs = append(l.errs, yamlx.Errorf(l.file, n, key, format, args...))
}

func (l *loader) add(err error) {
	if err != nil {
		l.errs = append(l.errs, err)
	}
}

func (l *loader) source(n *yaml.Node) string {
	return fmt.Sprintf("%s:%d", l.file, n.Line)
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// taskMeta keeps the nodes checks need after all tasks are read.
type taskMeta struct {
	task   *Task
	node   *yaml.Node
	notify []*yaml.Node
	name   *yaml.Node
}

func (l *loader) play(n *yaml.Node) *Play {
	if n.Kind != yaml.MappingNode {
		l.errorf(n, "", "a play is a mapping, got %s", yamlx.Describe(n))
		return nil
	}
	p := &Play{GatherFacts: true, Source: l.source(n)}
	l.playbookDir, l.roles = l.baseDir, &roleSet{}
	var varsFiles, tasks, handlers, roles, preTasks, postTasks *yaml.Node
	hasHosts := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		switch k.Value {
		case "name":
			p.Name = l.str(v, "name")
			l.checkTemplate(v, "name")
		case "hosts":
			hasHosts = true
			p.Hosts = strings.Join(l.strings(v, "hosts", false), ",")
			if p.Hosts == "" {
				l.errorf(v, "hosts", "want a host pattern, got %s", yamlx.Describe(v))
			}
		case "vars":
			p.Vars = l.vars(v, "vars")
		case "vars_files":
			varsFiles = v
		case "gather_facts":
			p.GatherFacts = l.bool(v, "gather_facts")
		case "serial":
			p.Serial = l.serial(v)
		case "max_fail_percentage":
			p.MaxFailPercent = l.percentage(v, "max_fail_percentage")
		case "any_errors_fatal":
			p.AnyErrorsFatal = l.bool(v, "any_errors_fatal")
		case "roles":
			roles = v
		case "pre_tasks":
			preTasks = v
		case "post_tasks":
			postTasks = v
		case "tasks":
			tasks = v
		case "handlers":
			handlers = v
		default:
			l.errorf(k, "", "%s", yamlx.UnknownKey(k.Value, playKeys))
		}
	}
	if !hasHosts {
		l.errorf(n, "", "missing required key %q", "hosts")
	}
	if varsFiles != nil {
		p.Vars = l.varsFiles(varsFiles, p.Vars)
	}
	// Ansible's order: pre_tasks, the roles' tasks, the play's tasks,
	// post_tasks; the roles' handlers, then the play's.
	l.section = 0
	pre, metas := l.tasks(preTasks, "pre_tasks", false)
	l.section++
	roleTasks, roleMetas := l.playRoles(roles, l.roles)
	playTasks, playMetas := l.tasks(tasks, "tasks", false)
	l.section++
	post, postMetas := l.tasks(postTasks, "post_tasks", false)
	p.Tasks = slices.Concat(pre, roleTasks, playTasks, post)
	metas = slices.Concat(metas, roleMetas, playMetas, postMetas)
	playHandlers, handlerMetas := l.tasks(handlers, "handlers", true)
	p.Handlers = append(l.roles.handlers, playHandlers...)
	handlerMetas = append(l.roles.metas, handlerMetas...)
	p.Roles = l.roles.roles
	l.checkHandlers(handlerMetas, append(metas, handlerMetas...))
	return p
}

func (l *loader) tasks(n *yaml.Node, key string, handlers bool) ([]*Task, []*taskMeta) {
	if n == nil || isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, key, "want a list of tasks, got %s", yamlx.Describe(n))
		return nil, nil
	}
	if l.taskCount += len(n.Content); l.taskCount > MaxTasks {
		l.errorf(n, key, "the playbook has more than %d tasks", MaxTasks)
		return nil, nil
	}
	var tasks []*Task
	var metas []*taskMeta
	for _, tn := range n.Content {
		if tn = deref(tn); tn.Kind == yaml.MappingNode {
			if kw, _ := importKey(tn, "import_tasks", "include_tasks"); kw != "" {
				inc, m := l.include(tn, handlers)
				tasks = append(tasks, inc...)
				metas = append(metas, m...)
				continue
			}
			if kw, _ := importKey(tn, "import_role", "include_role"); kw != "" {
				inc, m := l.importRole(tn, l.roles)
				tasks = append(tasks, inc...)
				metas = append(metas, m...)
				continue
			}
		}
		if tn.Kind == yaml.MappingNode && isMeta(tn) {
			l.meta(tn, handlers)
			continue
		}
		if tn.Kind == yaml.MappingNode && isBlock(tn) {
			if b, m := l.block(tn, handlers); b != nil {
				b.Section = l.section
				tasks = append(tasks, b)
				metas = append(metas, m...)
			}
			continue
		}
		if m := l.task(tn, handlers); m != nil {
			m.task.Section = l.section
			tasks = append(tasks, m.task)
			metas = append(metas, m)
		}
	}
	return tasks, metas
}

func (l *loader) task(n *yaml.Node, handler bool) *taskMeta {
	if n.Kind != yaml.MappingNode {
		l.errorf(n, "", "a task is a mapping, got %s", yamlx.Describe(n))
		return nil
	}
	t := &Task{LoopVar: "item", Source: l.source(n)}
	m := &taskMeta{task: t, node: n}
	var moduleKey *yaml.Node
	var unknown []*yaml.Node
	foreign := false // a module of a collection nixbook does not have, reported
	retriesSet, delaySet := false, false
	var delegateNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		switch k.Value {
		case "name":
			t.Name = l.str(v, "name")
			m.name = v
			l.checkTemplate(v, "name")
		case "when":
			t.When = l.conditions(v, "when")
		case "register":
			t.Register = l.str(v, "register")
			if t.Register != "" && !identifier.MatchString(t.Register) {
				l.errorf(v, "register", "%q is not a valid variable name (letters, digits and _, not starting with a digit)", t.Register)
			}
		case "loop":
			t.Loop = l.loop(v)
		case "loop_control":
			t.LoopVar = l.loopControl(v)
		case "retries":
			retriesSet = true
			t.Retries = l.int(v, "retries", 0)
		case "until":
			t.Until = l.conditions(v, "until")
		case "delay":
			delaySet = true
			t.Delay = l.duration(v, "delay")
		case "ignore_errors":
			t.IgnoreErrors = l.bool(v, "ignore_errors")
			l.ignoreSet[t] = true
		case "tags":
			t.Tags = l.strings(v, "tags", true)
		case "timeout":
			t.Timeout = l.duration(v, "timeout")
		case "no_log":
			t.NoLog = l.bool(v, "no_log")
			l.noLogSet[t] = true
		case "notify":
			t.Notify = l.strings(v, "notify", false)
			m.notify = scalars(v)
		case "changed_when":
			t.ChangedWhen = l.conditions(v, "changed_when")
		case "failed_when":
			t.FailedWhen = l.conditions(v, "failed_when")
		case "chroot":
			// `chroot: /root` runs the task inside a root; `chroot: {root: ...}`
			// is the chroot module that prepares one.
			if _, isModule := l.reg.Lookup("chroot"); isModule && v.Kind == yaml.MappingNode {
				if moduleKey != nil {
					l.errorf(k, "", "task has two modules, %q and %q", moduleKey.Value, k.Value)
					continue
				}
				spec, _ := l.reg.Lookup("chroot")
				moduleKey, t.Module, t.Spec, t.Args = k, k.Value, spec, n.Content[i+1]
				continue
			}
			t.Chroot = l.str(v, "chroot")
			l.checkTemplate(v, "chroot")
		case "vars":
			t.Vars = l.vars(v, "vars")
		case "run_once":
			t.RunOnce = l.bool(v, "run_once")
		case "check_mode":
			b := l.bool(v, "check_mode")
			t.CheckMode = &b
		case "delegate_to":
			t.DelegateTo, delegateNode = l.delegateTo(v), v
		case "listen":
			if !handler {
				l.errorf(k, "", "listen is only valid on handlers")
				continue
			}
			t.Listen = l.strings(v, "listen", false)
		default:
			name, fqcn := moduleName(k.Value)
			spec, ok := l.reg.Lookup(name)
			switch {
			case !ok && (fqcn == "ansible.builtin" || fqcn == "ansible.legacy"):
				foreign = true
				l.errorf(k, "", "module %q is not one of nixbook's: %s names work for %s only (nixbook modules lists the rest)",
					k.Value, fqcn, strings.Join(ansibleBuiltins(), ", "))
			case !ok && fqcn != "":
				foreign = true
				l.errorf(k, "", "module %q is from the collection %s, which nixbook does not have (nixbook modules lists its modules)", k.Value, fqcn)
			case !ok:
				unknown = append(unknown, k)
			case moduleKey != nil:
				l.errorf(k, "", "task has two modules, %q and %q", moduleKey.Value, k.Value)
			default:
				moduleKey, t.Module, t.Spec, t.Args = k, name, spec, n.Content[i+1]
			}
		}
	}
	for _, k := range unknown {
		l.unknownTaskKey(k, moduleKey == nil && len(unknown) == 1)
	}
	if moduleKey == nil && len(unknown) == 0 && !foreign {
		what := "task"
		if handler {
			what = "handler"
		}
		if t.Name != "" {
			l.errorf(n, "", "%s %q has no module", what, t.Name)
		} else {
			l.errorf(n, "", "%s has no module", what)
		}
	}
	if moduleKey != nil {
		l.checkArgs(t, moduleKey)
	}
	if t.DelegateTo != "" && moduleKey != nil && !slices.Contains(delegable(), t.Module) {
		// The install modules would wipe disks or reboot the controller.
		l.errorf(delegateNode, "delegate_to", "module %q cannot run on the controller: delegate_to works with %s", t.Module, strings.Join(delegable(), ", "))
	}
	if t.DelegateTo != "" && t.Chroot != "" {
		l.errorf(delegateNode, "", "delegate_to and chroot cannot be used together: the controller has no such root")
	}
	if len(t.Until) > 0 && !retriesSet {
		t.Retries = defaultRetries
	}
	if (t.Retries > 0 || len(t.Until) > 0) && !delaySet {
		t.Delay = defaultDelay
	}
	return m
}

// ansibleBuiltins are the modules nixbook shares with Ansible's
// ansible.builtin collection (their arguments are nixbook's; nixbook doc
// shows them).
func ansibleBuiltins() []string {
	return []string{"assert", "command", "copy", "debug", "fail", "reboot", "shell", "template"}
}

// moduleName maps a fully qualified module name to nixbook's: the generic
// modules answer to ansible.builtin.NAME and ansible.legacy.NAME as well.
// fqcn is the collection of a dotted name nixbook does not know, "" for a
// plain name.
func moduleName(key string) (name, fqcn string) {
	for _, prefix := range []string{"ansible.builtin.", "ansible.legacy."} {
		if short, ok := strings.CutPrefix(key, prefix); ok {
			if slices.Contains(ansibleBuiltins(), short) {
				return short, ""
			}
			return key, strings.TrimSuffix(prefix, ".")
		}
	}
	if parts := strings.Split(key, "."); len(parts) >= 3 {
		return key, strings.Join(parts[:len(parts)-1], ".")
	}
	return key, ""
}

// unknownTaskKey reports a key that is neither a keyword nor a module,
// guessing which of the two was meant.
func (l *loader) unknownTaskKey(k *yaml.Node, onlyCandidate bool) {
	modules := l.reg.Names()
	guess := yamlx.Suggest(k.Value, append(append([]string{}, taskKeys...), modules...))
	isModule := false
	for _, m := range modules {
		if m == guess {
			isModule = true
		}
	}
	switch {
	case guess != "" && isModule, guess == "" && onlyCandidate:
		l.errorf(k, "", "%s", yamlx.WithSuggestion(fmt.Sprintf("unknown module %q", k.Value), k.Value, modules))
	default:
		l.errorf(k, "", "%s", yamlx.UnknownKey(k.Value, taskKeys))
	}
}

func (l *loader) checkHandlers(handlers, all []*taskMeta) {
	topics := map[string]bool{}
	var names []string
	firstLine := map[string]int{}
	for _, h := range handlers {
		t := h.task
		if t.Name == "" && len(t.Listen) == 0 {
			l.errorf(h.node, "", "a handler needs a name or listen")
		}
		if t.Name != "" {
			if line, dup := firstLine[t.Name]; dup {
				l.errorf(h.name, "", "duplicate handler name %q (first at line %d)", t.Name, line)
			} else {
				firstLine[t.Name] = h.name.Line
			}
			topics[t.Name] = true
			names = append(names, t.Name)
		}
		for _, topic := range t.Listen {
			topics[topic] = true
			names = append(names, topic)
		}
	}
	for _, m := range all {
		for _, n := range m.notify {
			if topics[n.Value] || tmpl.IsTemplate(n.Value) {
				continue
			}
			l.errorf(n, "notify", "%s", yamlx.WithSuggestion(
				fmt.Sprintf("no handler is named or listens to %q", n.Value), n.Value, names))
		}
	}
}

// scalars returns a node's scalar items (or itself when it is a scalar).
func scalars(n *yaml.Node) []*yaml.Node {
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) {
			return nil
		}
		return []*yaml.Node{n}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range n.Content {
			if c = deref(c); c.Kind == yaml.ScalarNode {
				out = append(out, c)
			}
		}
		return out
	}
	return nil
}

func (l *loader) str(n *yaml.Node, key string) string {
	if isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		l.errorf(n, key, "want a string, got %s", yamlx.Describe(n))
		return ""
	}
	return n.Value
}

func (l *loader) bool(n *yaml.Node, key string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" || n.Decode(&b) != nil {
		l.errorf(n, key, "want a boolean (true or false), got %s", yamlx.Describe(n))
	}
	return b
}

func (l *loader) int(n *yaml.Node, key string, min int) int {
	var i int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
		l.errorf(n, key, "want an integer, got %s", yamlx.Describe(n))
		return 0
	}
	if i < min {
		l.errorf(n, key, "want at least %d, got %d", min, i)
		return min
	}
	return i
}

// strings reads a string or a list of strings; with commas, a string may
// also list several values separated by commas ("a,b").
func (l *loader) strings(n *yaml.Node, key string, commas bool) []string {
	var out []string
	addScalar := func(c *yaml.Node, path string) {
		if c.Kind != yaml.ScalarNode || isNull(c) {
			l.errorf(c, path, "want a string, got %s", yamlx.Describe(c))
			return
		}
		if !commas {
			out = append(out, c.Value)
			return
		}
		for _, part := range strings.Split(c.Value, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) {
			return nil
		}
		addScalar(n, key)
	case yaml.SequenceNode:
		for i, c := range n.Content {
			addScalar(deref(c), fmt.Sprintf("%s[%d]", key, i))
		}
	default:
		l.errorf(n, key, "want a string or a list of strings, got %s", yamlx.Describe(n))
	}
	return out
}

// conditions reads a Jinja expression, a boolean or a list of them; a bare
// YAML boolean becomes the expression "true" or "false".
func (l *loader) conditions(n *yaml.Node, key string) []string {
	var out []string
	add := func(c *yaml.Node, path string) {
		if c.Kind != yaml.ScalarNode || isNull(c) {
			l.errorf(c, path, "want an expression or a list of them, got %s", yamlx.Describe(c))
			return
		}
		expr := strings.TrimSpace(c.Value)
		if c.ShortTag() == "!!bool" {
			var b bool
			_ = c.Decode(&b)
			expr = strconv.FormatBool(b)
		}
		if err := l.engine.CheckExpr(expr); err != nil {
			l.errorf(c, path, "%v", err)
			return
		}
		if err := l.engine.LintExpr(expr); err != nil {
			l.faults = append(l.faults, yamlx.Errorf(l.file, c, path, "%v", err))
		}
		out = append(out, expr)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) {
			return nil
		}
		add(n, key)
	case yaml.SequenceNode:
		for i, c := range n.Content {
			add(deref(c), fmt.Sprintf("%s[%d]", key, i))
		}
		if out == nil {
			out = []string{}
		}
	default:
		l.errorf(n, key, "want an expression or a list of them, got %s", yamlx.Describe(n))
	}
	return out
}

// duration reads seconds (a number) or a Go duration ("90s", "10m").
func (l *loader) duration(n *yaml.Node, key string) time.Duration {
	bad := func() time.Duration {
		l.errorf(n, key, "want seconds or a duration such as 30s, got %s", yamlx.Describe(n))
		return 0
	}
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return bad()
	}
	s := strings.TrimSpace(n.Value)
	var d time.Duration
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		d = time.Duration(secs * float64(time.Second))
	} else if d, err = time.ParseDuration(s); err != nil {
		return bad()
	}
	if d < 0 {
		l.errorf(n, key, "want a duration of zero or more, got %s", yamlx.Describe(n))
		return 0
	}
	return d
}

func (l *loader) vars(n *yaml.Node, key string) map[string]any {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.errorf(n, key, "want a mapping of variables, got %s", yamlx.Describe(n))
		return nil
	}
	vars := map[string]any{}
	if err := yamlx.Decode(l.file, n, &vars); err != nil {
		l.add(err)
		return nil
	}
	l.checkVarNames(l.file, n, key)
	l.checkTemplates(l.file, n, key)
	return vars
}

func (l *loader) checkVarNames(file string, n *yaml.Node, key string) {
	for i := 0; i < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.ShortTag() != "!!merge" && !identifier.MatchString(k.Value) {
			l.errs = append(l.errs, yamlx.Errorf(file, k, key, "%q is not a valid variable name (letters, digits and _, not starting with a digit)", k.Value))
		}
	}
}

// varsFiles merges the mapping files listed in n over vars; later files
// win, as in Ansible.
func (l *loader) varsFiles(n *yaml.Node, vars map[string]any) map[string]any {
	var items []*yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) {
			return vars
		}
		items = []*yaml.Node{n}
	case yaml.SequenceNode:
		items = n.Content
	default:
		l.errorf(n, "vars_files", "want a file name or a list of them, got %s", yamlx.Describe(n))
		return vars
	}
	for i, item := range items {
		item = deref(item)
		key := "vars_files"
		if n.Kind == yaml.SequenceNode {
			key = fmt.Sprintf("vars_files[%d]", i)
		}
		if item.Kind != yaml.ScalarNode || isNull(item) {
			l.errorf(item, key, "want a file name, got %s", yamlx.Describe(item))
			continue
		}
		if tmpl.IsTemplate(item.Value) {
			l.errorf(item, key, "file names with templates are not supported: %q", item.Value)
			continue
		}
		path := item.Value
		if !filepath.IsAbs(path) {
			path = filepath.Join(l.baseDir, path)
		}
		root, err := l.parseFile(path)
		if err != nil {
			if !errors.Is(err, errParse) {
				l.errorf(item, key, "cannot read %s: %v", path, err)
			}
			continue
		}
		fileVars := l.varsOf(path, root)
		if fileVars == nil {
			continue
		}
		if vars == nil {
			vars = map[string]any{}
		}
		for k, v := range fileVars {
			vars[k] = v
		}
	}
	return vars
}

// serial reads a host count, a percentage ("30%") or a list of them.
func (l *loader) serial(n *yaml.Node) []Batch {
	one := func(c *yaml.Node, key string) (Batch, bool) {
		bad := func() (Batch, bool) {
			l.errorf(c, key, `want a host count or a percentage such as "30%%", got %s`, yamlx.Describe(c))
			return Batch{}, false
		}
		if c.Kind != yaml.ScalarNode || isNull(c) {
			return bad()
		}
		s := strings.TrimSpace(c.Value)
		if pct, ok := strings.CutSuffix(s, "%"); ok {
			p, err := strconv.Atoi(strings.TrimSpace(pct))
			if err != nil {
				return bad()
			}
			if p < 1 || p > 100 {
				l.errorf(c, key, "want a percentage from 1%% to 100%%, got %s", yamlx.Describe(c))
				return Batch{}, false
			}
			return Batch{Percent: p}, true
		}
		count, err := strconv.Atoi(s)
		if err != nil {
			return bad()
		}
		if count < 1 {
			l.errorf(c, key, "want at least 1 host, got %s", yamlx.Describe(c))
			return Batch{}, false
		}
		return Batch{Count: count}, true
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) || n.Value == "0" {
			return nil // Ansible's serial: 0 is one batch of every host
		}
		if b, ok := one(n, "serial"); ok {
			return []Batch{b}
		}
	case yaml.SequenceNode:
		var out []Batch
		for i, c := range n.Content {
			if b, ok := one(deref(c), fmt.Sprintf("serial[%d]", i)); ok {
				out = append(out, b)
			}
		}
		return out
	default:
		l.errorf(n, "serial", `want a host count, a percentage such as "30%%", or a list of them, got %s`, yamlx.Describe(n))
	}
	return nil
}

func (l *loader) percentage(n *yaml.Node, key string) *int {
	var p int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&p) != nil || p < 0 || p > 100 {
		l.errorf(n, key, "want a percentage from 0 to 100, got %s", yamlx.Describe(n))
		return nil
	}
	return &p
}

// loop reads a list, kept as written (its items are rendered per host), or
// a template that renders to one.
func (l *loader) loop(n *yaml.Node) any {
	switch {
	case n.Kind == yaml.SequenceNode:
		var items []any
		if err := yamlx.Decode(l.file, n, &items); err != nil {
			l.add(err)
			return nil
		}
		if items == nil {
			items = []any{}
		}
		l.checkTemplates(l.file, n, "loop")
		return items
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && tmpl.IsTemplate(n.Value):
		l.checkTemplate(n, "loop")
		return n.Value
	}
	l.errorf(n, "loop", `want a list or a template such as "{{ disks }}", got %s`, yamlx.Describe(n))
	return nil
}

func (l *loader) loopControl(n *yaml.Node) string {
	var lc struct {
		LoopVar string `yaml:"loop_var"`
	}
	if err := yamlx.Decode(l.file, n, &lc); err != nil {
		l.add(prefixed(err, "loop_control"))
		return "item"
	}
	if lc.LoopVar == "" {
		return "item"
	}
	if !identifier.MatchString(lc.LoopVar) {
		l.errorf(n, "loop_control.loop_var", "%q is not a valid variable name", lc.LoopVar)
	}
	return lc.LoopVar
}

// prefixed puts key in front of the keys of yamlx errors.
func prefixed(err error, key string) error {
	var errs []error
	var multi interface{ Unwrap() []error }
	if errors.As(err, &multi) {
		errs = multi.Unwrap()
	} else {
		errs = []error{err}
	}
	for i, e := range errs {
		var ye *yamlx.Error
		if errors.As(e, &ye) {
			c := *ye
			c.Key = yamlx.Join(key, c.Key)
			errs[i] = &c
		}
	}
	return errors.Join(errs...)
}

// checkTemplate reports a template syntax error in a scalar.
func (l *loader) checkTemplate(n *yaml.Node, key string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		if err := l.engine.Check(n.Value); err != nil {
			l.errorf(n, key, "%v", err)
		} else if err := l.engine.Lint(n.Value); err != nil {
			l.faults = append(l.faults, yamlx.Errorf(l.file, n, key, "%v", err))
		}
	}
}

// checkTemplates reports template syntax errors anywhere in a tree.
func (l *loader) checkTemplates(file string, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			if err := l.engine.Check(n.Value); err != nil {
				l.errs = append(l.errs, yamlx.Errorf(file, n, path, "%v", err))
			} else if err := l.engine.Lint(n.Value); err != nil {
				l.faults = append(l.faults, yamlx.Errorf(file, n, path, "%v", err))
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			l.checkTemplates(file, n.Content[i+1], yamlx.Join(path, n.Content[i].Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.checkTemplates(file, c, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// delegateTo reads delegate_to. Only the controller is supported: the task
// runs through the local transport, with the play host's variables.
func (l *loader) delegateTo(n *yaml.Node) string {
	target := l.str(n, "delegate_to")
	switch target {
	case "localhost", "127.0.0.1", "::1":
		return "localhost"
	case "":
		return ""
	}
	l.errorf(n, "delegate_to", "only localhost is supported (the task runs on the controller), got %q", target)
	return ""
}

// delegable are the modules delegate_to: localhost may run on the
// controller.
func delegable() []string {
	return []string{"assert", "command", "copy", "debug", "fail", "shell", "template"}
}

// isMeta reports a meta: entry (or ansible.builtin.meta:).
func isMeta(n *yaml.Node) bool {
	kw, _ := importKey(n, "meta")
	return kw != ""
}

// meta reads a meta: entry. flush_handlers, at the top level of a task
// list, runs the notified handlers there: the tasks after it start a new
// section. Ansible's other meta actions are refused.
func (l *loader) meta(n *yaml.Node, handler bool) {
	_, v := importKey(n, "meta")
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k != "name" && !strings.HasSuffix(k, "meta") {
			l.errorf(n.Content[i], "", "%s", yamlx.UnknownKey(k, []string{"name", "meta"}))
		}
	}
	switch {
	case v.Kind != yaml.ScalarNode || v.Value != "flush_handlers":
		l.errorf(v, "meta", "only flush_handlers is supported, got %s", yamlx.Describe(v))
	case handler || l.nested > 0:
		l.errorf(v, "meta", "flush_handlers works only in a play's task lists (not in handlers or blocks)")
	default:
		l.section++
	}
}
