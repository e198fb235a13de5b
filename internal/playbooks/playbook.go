// Package playbooks loads playbooks (a YAML list of plays) strictly, and
// carries the stock playbooks embedded in the binary.
package playbooks

import (
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/modules"
)

// Playbook is a loaded playbook.
type Playbook struct {
	Path  string // the file it came from ("embedded:install.yml" for stock ones)
	Dir   string // the directory relative paths resolve against (playbook_dir); "" for stock ones
	Plays []*Play
	// Faults are what is wrong with its templates whatever the variables
	// (an unknown filter, a division by a literal zero), each with its
	// file and line. `validate` reports them; a run leaves them to fail
	// their task, since they may sit in a branch never taken.
	Faults []error
	// Digest is the digest of every file the playbook was read from: its
	// own and those it imports (tasks, playbooks, roles, vars files).
	Digest string
}

// Play maps a host pattern to tasks.
type Play struct {
	Name           string
	Hosts          string
	Vars           map[string]any // play vars, vars_files merged in (files after vars)
	GatherFacts    bool           // default true
	Serial         []Batch        // empty: one batch of every host
	MaxFailPercent *int           // nil: any failure in a batch stops nothing
	AnyErrorsFatal bool
	// Roles are the roles the play's roles: list brought (dependencies
	// included): their defaults and vars are seen by every task of the
	// play, as in Ansible.
	Roles    []*Role
	Tasks    []*Task // pre_tasks, the roles' tasks, tasks, post_tasks
	Handlers []*Task // the roles' handlers first
	Source   string  // file:line
}

// Batch is one `serial` entry: a host count or a percentage of the play's hosts.
type Batch struct {
	Count   int
	Percent int
}

// Task is one step. Everything a template may touch is kept as written and
// rendered per host at run time.
type Task struct {
	Name   string
	Module string     // the module key
	Args   *yaml.Node // the module's arguments as written (a mapping, or a bare value for free-form modules)
	Spec   modules.Spec

	When         []string // ANDed Jinja expressions; empty: always
	Register     string
	Loop         any    // a list, or a template string that renders to one; nil: no loop
	LoopVar      string // default "item"
	Retries      int    // with Until (or alone): attempts after the first
	Until        []string
	Delay        time.Duration
	IgnoreErrors bool
	Tags         []string
	Timeout      time.Duration // 0: none
	NoLog        bool
	Notify       []string
	ChangedWhen  []string // nil: the module decides
	FailedWhen   []string // nil: the module decides
	Chroot       string   // run inside this chroot (set by the chroot module's root)
	Vars         map[string]any
	Listen       []string // handlers: extra topics the handler answers to
	RunOnce      bool     // run on the first host of each batch; the others take its result
	// CheckMode is check_mode: true makes the task a dry run even in a
	// real run; false is accepted but changes nothing (see README). nil:
	// the run's mode.
	CheckMode *bool
	// DelegateTo is "localhost" for delegate_to: localhost: the task runs
	// on the controller, with the play host's variables and facts. "":
	// on the play host.
	DelegateTo string
	// Section numbers the stretch of the play's tasks the task belongs to:
	// pre_tasks, the roles and tasks, post_tasks, each cut again by
	// meta: flush_handlers. The notified handlers run at the end of each.
	// Set on the tasks of a play's lists, blocks included, not on the
	// tasks inside blocks.
	Section int
	// Role is the role the task comes from, nil for a play's own task.
	Role *Role
	// Block makes the task a block: it has no module, and its When, Tags,
	// Vars, IgnoreErrors and NoLog are already copied onto its tasks.
	Block *Block

	Source string // file:line of the task
}

// DisplayName is the task's name, or its module when it has none.
func (t *Task) DisplayName() string {
	name := t.Name
	if name == "" {
		name = t.Module
	}
	if t.Role != nil {
		return t.Role.Name + " : " + name // as Ansible shows a role's task
	}
	return name
}

// Block is Ansible's block: Rescue runs when a task of Tasks fails, and
// Always runs whatever happened (lib/ansible/playbook/block.py).
type Block struct {
	Tasks, Rescue, Always []*Task
}

// Leaves lists the tasks that run a module, blocks opened, in the order
// they are written (a block's tasks, then its rescue, then its always).
func Leaves(tasks []*Task) []*Task {
	var out []*Task
	for _, t := range tasks {
		if t.Block == nil {
			out = append(out, t)
			continue
		}
		out = append(out, Leaves(t.Block.Tasks)...)
		out = append(out, Leaves(t.Block.Rescue)...)
		out = append(out, Leaves(t.Block.Always)...)
	}
	return out
}

// Filter keeps the tasks keep accepts, blocks opened; a block left with no
// task in any of its sections is dropped.
func Filter(tasks []*Task, keep func(*Task) bool) []*Task {
	var out []*Task
	for _, t := range tasks {
		if t.Block == nil {
			if keep(t) {
				out = append(out, t)
			}
			continue
		}
		b := &Block{Tasks: Filter(t.Block.Tasks, keep), Rescue: Filter(t.Block.Rescue, keep), Always: Filter(t.Block.Always, keep)}
		if len(b.Tasks)+len(b.Rescue)+len(b.Always) == 0 {
			continue
		}
		c := *t
		c.Block = b
		out = append(out, &c)
	}
	return out
}
