package runner

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/playbooks"
)

// PlanVersion is the version of the saved plan format SavedPlan reads and
// writes.
const PlanVersion = 1

// SavedPlan is the plan of every host of a dry run, as `nixbook run --check
// --out` writes it and `nixbook run --plan` applies it.
type SavedPlan struct {
	Version int `json:"version"`
	// Inputs are the digests of what the plan was made from (playbook,
	// inventory, extra vars, task selection), filled in by the caller.
	Inputs map[string]string `json:"inputs,omitempty"`
	Hosts  []HostPlan        `json:"hosts"`
}

// HostPlan is one host's results of a dry run, in order.
type HostPlan struct {
	Host string `json:"host"`
	// Inventory is the digest of the host's inventory entry (see
	// InventoryDigest); empty: not compared.
	Inventory string     `json:"inventory,omitempty"`
	Tasks     []TaskPlan `json:"tasks"`
}

// InventoryDigest is the digest of what the inventory says of h: address,
// port, user, keys, groups and variables (not where it says it).
func InventoryDigest(h *inventory.Host) string {
	b, err := json.Marshal(struct {
		Name, Address, User string
		Port                int
		KeyFiles, Groups    []string
		Vars                map[string]any
	}{h.Name, h.Address, h.User, h.Port, h.KeyFiles, h.Groups, h.Vars})
	if err != nil {
		b = fmt.Appendf(nil, "%#v", h) // variables JSON cannot hold: compared as Go prints them
	}
	return fmt.Sprintf("sha256:%x", sha256.Sum256(b))
}

// TaskPlan is one task's (or loop item's) result in a dry run. What it
// shows is redacted as the run's output is.
type TaskPlan struct {
	Play    string          `json:"play,omitempty"`
	Task    string          `json:"task"`
	Item    string          `json:"item,omitempty"` // the loop item, as JSON
	Status  Status          `json:"status"`
	Changes []PlannedChange `json:"changes,omitempty"`
	Reboots bool            `json:"reboots,omitempty"`
	// Digest covers what the plan's changes would write (--diff's before
	// and after), so that content differing at the same size differs.
	Digest string `json:"digest,omitempty"`
}

// PlannedChange is a change of a saved plan: its summary and commands.
type PlannedChange struct {
	Summary  string   `json:"summary"`
	Commands []string `json:"commands,omitempty"`
}

func (t TaskPlan) name() string {
	if t.Item != "" {
		return fmt.Sprintf("%q (item=%s)", t.Task, t.Item)
	}
	return fmt.Sprintf("%q", t.Task)
}

func (t TaskPlan) commands() []string {
	var out []string
	for _, c := range t.Changes {
		out = append(out, c.Commands...)
	}
	return out
}

// PlanRecorder builds a SavedPlan from a dry run's events: pass its Record
// as (or from) Runner.Events.
type PlanRecorder struct {
	hosts map[string]int
	plan  SavedPlan
}

// Record takes one event; only results count.
func (p *PlanRecorder) Record(e Event) {
	if e.Type != EventResult || e.Host == "" {
		return
	}
	if p.hosts == nil {
		p.hosts = map[string]int{}
	}
	i, ok := p.hosts[e.Host]
	if !ok {
		i = len(p.plan.Hosts)
		p.hosts[e.Host] = i
		p.plan.Hosts = append(p.plan.Hosts, HostPlan{Host: e.Host})
	}
	t := TaskPlan{Play: e.Play, Task: e.Task, Status: e.Status, Reboots: e.Reboots, Digest: e.Digest}
	if e.Item != nil {
		b, err := json.Marshal(e.Item)
		if err != nil {
			b = []byte(fmt.Sprint(e.Item))
		}
		t.Item = string(b)
	}
	for _, c := range e.Changes {
		t.Changes = append(t.Changes, PlannedChange{Summary: c.Summary, Commands: c.Commands})
	}
	p.plan.Hosts[i].Tasks = append(p.plan.Hosts[i].Tasks, t)
}

// Plan returns what was recorded, versioned, with no inputs.
func (p *PlanRecorder) Plan() *SavedPlan {
	out := p.plan
	out.Version = PlanVersion
	return &out
}

// Host returns the saved plan of host, or nil.
func (p *SavedPlan) Host(name string) *HostPlan {
	for i := range p.Hosts {
		if p.Hosts[i].Host == name {
			return &p.Hosts[i]
		}
	}
	return nil
}

// CompareHost says how fresh differs from saved, the plan of the same host
// (nil: it has none), one line per difference, and which tasks neither
// plan could plan: unknown until applied, they are not covered by the
// approval and are planned afresh when they run.
func CompareHost(saved, fresh *HostPlan) (diffs, uncovered []string) {
	if saved == nil {
		return []string{"the host is not in the saved plan"}, nil
	}
	for i := 0; i < max(len(saved.Tasks), len(fresh.Tasks)); i++ {
		switch {
		case i >= len(saved.Tasks):
			return append(diffs, fmt.Sprintf("task %s is new", fresh.Tasks[i].name())), uncovered
		case i >= len(fresh.Tasks):
			return append(diffs, fmt.Sprintf("task %s is no longer run", saved.Tasks[i].name())), uncovered
		}
		s, f := saved.Tasks[i], fresh.Tasks[i]
		if s.Play != f.Play || s.Task != f.Task || s.Item != f.Item {
			// The task lists part ways: what follows cannot be paired.
			return append(diffs, fmt.Sprintf("task %d is %s, was %s", i+1, f.name(), s.name())), uncovered
		}
		diffs = append(diffs, compareTask(s, f)...)
		if s.Status == StatusUnknown && f.Status == StatusUnknown {
			uncovered = append(uncovered, f.name())
		}
	}
	return diffs, uncovered
}

// compareTask lists how f differs from s, the same task.
func compareTask(s, f TaskPlan) []string {
	var out []string
	if s.Status != f.Status {
		out = append(out, fmt.Sprintf("task %s: %s, was %s", f.name(), f.Status, s.Status))
	}
	added, removed := multisetDiff(s.commands(), f.commands())
	if len(added) > 0 {
		out = append(out, fmt.Sprintf("task %s: commands added: %s", f.name(), strings.Join(added, "; ")))
	}
	if len(removed) > 0 {
		out = append(out, fmt.Sprintf("task %s: commands removed: %s", f.name(), strings.Join(removed, "; ")))
	}
	if len(added) == 0 && len(removed) == 0 && !slices.Equal(s.commands(), f.commands()) {
		out = append(out, fmt.Sprintf("task %s: commands reordered", f.name()))
	}
	if ss, fs := summaries(s), summaries(f); !slices.Equal(ss, fs) {
		out = append(out, fmt.Sprintf("task %s: changes now %q, were %q", f.name(), fs, ss))
	}
	if s.Reboots != f.Reboots {
		out = append(out, fmt.Sprintf("task %s: reboots the host: %v, was %v", f.name(), f.Reboots, s.Reboots))
	}
	if s.Digest != f.Digest {
		out = append(out, fmt.Sprintf("task %s: what it would write differs", f.name()))
	}
	return out
}

func summaries(t TaskPlan) []string {
	var out []string
	for _, c := range t.Changes {
		out = append(out, c.Summary)
	}
	return out
}

// multisetDiff returns the lines of b not in a and of a not in b, counting
// repeats.
func multisetDiff(a, b []string) (added, removed []string) {
	count := map[string]int{}
	for _, l := range a {
		count[l]++
	}
	for _, l := range b {
		if count[l] > 0 {
			count[l]--
			continue
		}
		added = append(added, l)
	}
	for _, l := range a {
		if count[l] > 0 {
			count[l]--
			removed = append(removed, l)
		}
	}
	return added, removed
}

// planDigest is the digest of what p's changes would write, as shown with
// --diff (redacted); sensitive changes and no_log tasks are left out. ""
// when there is nothing to cover.
func (h *hostRun) planDigest(p *modules.Plan) string {
	if p == nil || h.noLog {
		return ""
	}
	sum := sha256.New()
	covered := false
	for _, c := range p.Changes {
		if c.Sensitive || c.Before == "" && c.After == "" {
			continue
		}
		covered = true
		fmt.Fprintf(sum, "%d:%s%d:%s", len(c.Before), h.redact.String(c.Before), len(c.After), h.redact.String(c.After))
	}
	if !covered {
		return ""
	}
	return fmt.Sprintf("sha256:%x", sum.Sum(nil))
}

// verifyPlan plans every host afresh in a dry run and compares each
// host's plan with the approved one. It returns, for each host whose plan
// differs, why it is refused; notices name the tasks the approval does not
// cover.
func (r *run) verifyPlan(ctx context.Context, pb *playbooks.Playbook, inv *inventory.Inventory, sel *Selection) (map[string]string, error) {
	r.emit(Event{Type: EventNotice, Msg: "saved plan: planning every host afresh (a dry run) before anything changes"})
	dry := *r.Runner // every setting of the run, but a dry run
	dry.Check, dry.Approved = true, nil
	rec := &PlanRecorder{}
	dry.Events = func(e Event) {
		rec.Record(e)
		if e.Type == EventNotice {
			r.emit(e)
		}
	}
	if _, err := dry.RunSelected(ctx, pb, inv, sel); err != nil {
		return nil, err
	}
	refused := map[string]string{}
	for _, fresh := range rec.Plan().Hosts {
		saved := r.Approved.Host(fresh.Host)
		diffs, uncovered := CompareHost(saved, &fresh)
		if ih, ok := inv.Host(fresh.Host); ok && saved != nil && saved.Inventory != "" && saved.Inventory != InventoryDigest(ih) {
			diffs = append([]string{"its inventory entry (address, user, groups or variables) changed"}, diffs...)
		}
		if len(diffs) > 0 {
			refused[fresh.Host] = "refused: its plan differs from the saved plan: " + strings.Join(diffs, "; ")
			continue
		}
		msg := "plan matches the saved plan"
		if len(uncovered) > 0 {
			msg += "; not covered by it, planned when they run (unknown until applied): " + strings.Join(uncovered, ", ")
		}
		r.emit(Event{Type: EventNotice, Host: fresh.Host, Msg: msg})
	}
	return refused, nil
}
