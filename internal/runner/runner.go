// Package runner executes playbooks: plays in order, hosts in serial
// batches, one pipeline per host, and the dry-run gate in exactly one place.
package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"sync"
	"time"

	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/transport"
)

// MaxForks caps the hosts in flight.
const MaxForks = 256

// Options are the knobs of one run.
type Options struct {
	Check       bool // dry run: Check only, Apply never
	Diff        bool
	Forks       int // hosts in flight; 0: every host, capped at MaxForks
	Tags        []string
	SkipTags    []string
	StartAtTask string
	Serial      []playbooks.Batch // overrides every play's serial when set
	ExtraVars   map[string]any
	LogDir      string // per-host logs; empty: none
	// StateDir keeps what modules remember of hosts between runs (see
	// MemoryFile); empty: only for the run.
	StateDir string
	// Strict refuses a command Apply runs that its task's plan did not
	// list (reads excepted); without it, such commands run and are
	// reported on the task's result.
	Strict bool
	// Approved is a saved plan to apply (--plan): before anything changes,
	// every host is planned afresh in a dry run, and a host whose plan
	// differs from its approved one is refused. Ignored in a dry run.
	Approved *SavedPlan
}

// ErrUnplanned is the error of a command refused under Options.Strict.
var ErrUnplanned = errors.New("refused: command not in the task's plan (--strict)")

// Runner runs playbooks against an inventory.
type Runner struct {
	Dialer    transport.Dialer
	Templates *tmpl.Engine
	Events    func(Event) // called from many goroutines, one event at a time
	// HostKeys is nixbook's known_hosts, where modules pin the keys they
	// generate for hosts (modules.KeyKeeper); nil: they cannot.
	HostKeys *hostkeys.Store
	Options
}

// run is one Run of a Runner: the Runner's configuration, read only, and
// the state of this run, so that a Runner may serve runs one after another
// or at once.
type run struct {
	*Runner

	mu         sync.Mutex // serialises Events
	memory     *memory
	hosts      map[string]*hostRun
	registered map[string]bool   // what the playbook's tasks register
	refused    map[string]string // hosts whose fresh plan differs from Approved, and why

	// Magic variables, set before any host starts and only read after.
	groups    map[string]any               // groups
	hostvars  map[string]any               // hostvars, from the inventory
	playHosts map[*playbooks.Play][]string // play_hosts: each play's hosts

	ovhOnce sync.Once
	ovhEnv  ovh.Env // the OVH API with the run's rate budgets, one per account
}

// ovhAPI is how this run's hosts reach the OVH API: every host of a run that
// uses one account shares its budget (OVH counts calls per account), and
// another run, or another Runner, has budgets of its own. Endpoint and
// credentials come from each host's inventory.
func (r *run) ovhAPI() ovh.Env {
	r.ovhOnce.Do(func() { r.ovhEnv = ovh.Env{Limiters: ovh.NewLimiters()} })
	return r.ovhEnv
}

func (r *run) emit(e Event) {
	if r.Events == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	screenSafeEvent(&e)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Events(e)
}

// Run executes every play of pb on the hosts of inv selected by the plays'
// patterns and limit (empty: no limit). Host failures are reported in the
// recap, not as an error; the error is for runs that could not start.
func (r *Runner) Run(ctx context.Context, pb *playbooks.Playbook, inv *inventory.Inventory, limit string) (*Recap, error) {
	sel, err := Select(pb, inv, limit)
	if err != nil {
		return nil, err
	}
	return r.RunSelected(ctx, pb, inv, sel)
}

// RunSelected is Run on hosts already selected (see Select), so that a
// command line that validates first resolves them once.
func (r *Runner) RunSelected(ctx context.Context, pb *playbooks.Playbook, inv *inventory.Inventory, sel *Selection) (*Recap, error) {
	return (&run{Runner: r}).execute(ctx, pb, inv, sel)
}

func (r *run) execute(ctx context.Context, pb *playbooks.Playbook, inv *inventory.Inventory, sel *Selection) (*Recap, error) {
	r.refused = nil
	if r.Approved != nil && !r.Check {
		refused, err := r.verifyPlan(ctx, pb, inv, sel)
		if err != nil {
			return nil, err
		}
		r.refused = refused
	}
	r.hosts = map[string]*hostRun{}
	r.memory = newMemory(r.StateDir)
	r.registered = map[string]bool{}
	for _, p := range pb.Plays {
		maps.Copy(r.registered, registeredNames(p))
	}
	var order []string
	defer func() {
		for _, h := range r.hosts {
			h.close()
			h.log.Close()
		}
	}()

	if r.StartAtTask != "" && !hasTask(pb, r.StartAtTask) {
		return nil, fmt.Errorf("start-at-task: no task named %q", r.StartAtTask)
	}
	r.groups, r.hostvars = inv.GroupMembers(), inv.HostVars()
	r.playHosts = map[*playbooks.Play][]string{}
	plays := make([][]*inventory.Host, len(pb.Plays))
	for i, play := range pb.Plays {
		hosts := sel.Hosts(play)
		plays[i] = hosts
		names := make([]string, len(hosts))
		for j, h := range hosts {
			names[j] = h.Name
		}
		r.playHosts[play] = names
		for _, h := range hosts {
			if _, ok := r.hosts[h.Name]; !ok {
				log := newHostLog(r.LogDir, h.Name, func(err error) {
					r.emit(Event{Type: EventNotice, Host: h.Name, Msg: "no log for this host: " + err.Error()})
				})
				r.hosts[h.Name] = &hostRun{inv: h, r: r, log: log, vars: map[string]any{}, redact: newRedactor(mergeVars(h.Vars, r.ExtraVars)), recap: HostRecap{Host: h.Name}}
				order = append(order, h.Name)
			}
			r.hosts[h.Name].plays++
		}
	}

	if r.LogDir != "" {
		files := make([]string, len(order))
		for i, name := range order {
			files[i] = LogFileName(name)
		}
		if err := PrepareLogDir(r.LogDir, files); err != nil {
			return nil, err
		}
	}

	recap := &Recap{}
	started := r.StartAtTask == ""
	for i, play := range pb.Plays {
		if ctx.Err() != nil {
			break
		}
		var tasks []*playbooks.Task
		tasks, started = r.selectTasks(play.Tasks, started)
		if !started {
			continue
		}
		if why := r.runPlay(ctx, pb, play, tasks, plays[i]); why != "" {
			recap.Aborted = why
			r.emit(Event{Type: EventPlayAbort, Play: play.Name, Msg: why})
			break
		}
	}
	recap.Interrupted = ctx.Err() != nil
	if recap.Interrupted {
		r.stopHosts()
		recap.Unfinished = r.unfinished(order)
		r.emit(Event{Type: EventInterrupt, Msg: "interrupted: no new task started, running commands killed"})
	}
	for _, name := range order {
		recap.Hosts = append(recap.Hosts, r.hosts[name].recap)
	}
	r.emit(Event{Type: EventRecap, Recap: recap.Hosts})
	return recap, nil
}

// DefaultLogDir is where a run's per-host logs go by default.
func DefaultLogDir(now time.Time) string {
	return filepath.Join(".nixbook", "logs", now.Format("20060102-150405"))
}

func hasTask(pb *playbooks.Playbook, name string) bool {
	for _, p := range pb.Plays {
		for _, t := range playbooks.Leaves(p.Tasks) {
			if t.Name == name {
				return true
			}
		}
	}
	return false
}
