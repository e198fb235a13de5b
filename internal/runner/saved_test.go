package runner_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/transport"
	"github.com/nixbook/nixbook/internal/transport/local"
)

func TestCompareHost(t *testing.T) {
	touch := runner.TaskPlan{Task: "touch", Status: runner.StatusWouldChange,
		Changes: []runner.PlannedChange{{Summary: "create /x", Commands: []string{"touch /x"}}}}
	with := func(f func(*runner.TaskPlan)) runner.TaskPlan {
		t := touch
		t.Changes = []runner.PlannedChange{{Summary: "create /x", Commands: []string{"touch /x"}}}
		f(&t)
		return t
	}
	pool := runner.TaskPlan{Task: "pool", Status: runner.StatusUnknown}
	tests := []struct {
		name          string
		saved, fresh  []runner.TaskPlan
		want          []string // parts of the differences, in order
		wantUncovered []string
	}{
		{"same", []runner.TaskPlan{touch, pool}, []runner.TaskPlan{touch, pool}, nil, []string{`"pool"`}},
		{"command added", []runner.TaskPlan{touch}, []runner.TaskPlan{with(func(t *runner.TaskPlan) {
			t.Changes[0].Commands = append(t.Changes[0].Commands, "rm /y")
		})}, []string{`task "touch": commands added: rm /y`}, nil},
		{"done already", []runner.TaskPlan{touch}, []runner.TaskPlan{{Task: "touch", Status: runner.StatusOK}},
			[]string{`task "touch": ok, was would change`, `commands removed: touch /x`, `changes now`}, nil},
		{"content differs", []runner.TaskPlan{touch}, []runner.TaskPlan{with(func(t *runner.TaskPlan) { t.Digest = "sha256:1" })},
			[]string{"what it would write differs"}, nil},
		{"reboots", []runner.TaskPlan{touch}, []runner.TaskPlan{with(func(t *runner.TaskPlan) { t.Reboots = true })},
			[]string{"reboots the host: true, was false"}, nil},
		{"now known", []runner.TaskPlan{pool}, []runner.TaskPlan{{Task: "pool", Status: runner.StatusOK}},
			[]string{`task "pool": ok, was unknown until applied`}, nil},
		{"new task", []runner.TaskPlan{touch}, []runner.TaskPlan{touch, pool}, []string{`task "pool" is new`}, nil},
		{"task gone", []runner.TaskPlan{touch, pool}, []runner.TaskPlan{touch}, []string{`task "pool" is no longer run`}, nil},
		{"other task", []runner.TaskPlan{pool, touch}, []runner.TaskPlan{touch, pool}, []string{`task 1 is "touch", was "pool"`}, nil},
		{"other item", []runner.TaskPlan{{Task: "l", Item: `"a"`}}, []runner.TaskPlan{{Task: "l", Item: `"b"`}}, []string{`task 1 is "l" (item="b"), was "l" (item="a")`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diffs, uncovered := runner.CompareHost(&runner.HostPlan{Host: "h", Tasks: tt.saved}, &runner.HostPlan{Host: "h", Tasks: tt.fresh})
			got := strings.Join(diffs, "\n")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("differences:\n%s\nwant them to contain %q", got, w)
				}
			}
			if len(tt.want) == 0 && len(diffs) > 0 {
				t.Errorf("differences %q, want none", diffs)
			}
			if !reflect.DeepEqual(uncovered, tt.wantUncovered) {
				t.Errorf("uncovered = %q, want %q", uncovered, tt.wantUncovered)
			}
		})
	}
	if diffs, _ := runner.CompareHost(nil, &runner.HostPlan{Host: "h"}); len(diffs) != 1 || !strings.Contains(diffs[0], "not in the saved plan") {
		t.Errorf("a host without a saved plan: %q", diffs)
	}
}

// markerModule creates a file when it is missing.
type markerModule struct {
	path    string
	applies *atomic.Int32
}

func (m markerModule) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	_, err := h.Probe(ctx, transport.Cmd{Args: []string{"test", "-e", m.path}})
	var exit *transport.ExitError
	if err == nil {
		return &modules.Plan{}, nil
	}
	if !errors.As(err, &exit) {
		return nil, err
	}
	c := modules.Change{Summary: "create " + m.path}
	c.Cmd("touch", m.path)
	return &modules.Plan{Changes: []modules.Change{c}}, nil
}

func (m markerModule) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	m.applies.Add(1)
	for _, c := range p.Changes {
		for _, line := range c.Commands {
			if _, err := h.Run(ctx, transport.Cmd{Args: strings.Fields(line)}); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

// TestSavedPlan makes a plan in a dry run and applies it: as it is, then
// after the host changed, when the host is refused before anything changes.
func TestSavedPlan(t *testing.T) {
	dir := t.TempDir()
	var applies atomic.Int32
	reg := modules.NewRegistry(modules.Spec{
		Name: "marker", Summary: "test", Args: struct {
			Name string `yaml:"name"`
		}{},
		New: func(dec modules.Decoder) (modules.Module, error) {
			var a struct {
				Name string `yaml:"name"`
			}
			if err := dec.Decode(&a); err != nil {
				return nil, err
			}
			return markerModule{path: filepath.Join(dir, a.Name), applies: &applies}, nil
		},
	})
	pb, err := playbooks.LoadBytes("play.yml", []byte(`
- hosts: all
  gather_facts: false
  tasks:
    - name: first
      marker: {name: first}
    - name: second
      marker: {name: "{{ item }}"}
      loop: [a, b]
`), "", reg)
	if err != nil {
		t.Fatal(err)
	}
	run := func(opts runner.Options) ([]runner.Event, *runner.PlanRecorder) {
		t.Helper()
		rec := &runner.PlanRecorder{}
		var mu sync.Mutex
		var events []runner.Event
		r := &runner.Runner{Dialer: local.Dialer{}, Templates: tmpl.New(), Options: opts, Events: func(e runner.Event) {
			mu.Lock()
			defer mu.Unlock()
			rec.Record(e)
			events = append(events, e)
		}}
		if _, err := r.Run(context.Background(), pb, localInventory(1), ""); err != nil {
			t.Fatal(err)
		}
		return events, rec
	}

	_, rec := run(runner.Options{Check: true})
	saved := rec.Plan()
	if saved.Version != runner.PlanVersion || len(saved.Hosts) != 1 {
		t.Fatalf("saved plan = %+v", saved)
	}
	var lines []string
	for _, tp := range saved.Hosts[0].Tasks {
		lines = append(lines, tp.Task+" "+tp.Item+" "+string(tp.Status)+" "+strings.Join(commandsOf(tp), ","))
	}
	want := []string{
		"first  would change touch " + filepath.Join(dir, "first"),
		`second "a" would change touch ` + filepath.Join(dir, "a"),
		`second "b" would change touch ` + filepath.Join(dir, "b"),
		"second  would change ",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("saved plan tasks:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	// The host changed since: b exists. Nothing is applied.
	if err := os.WriteFile(filepath.Join(dir, "b"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	events, _ := run(runner.Options{Approved: saved})
	if applies.Load() != 0 {
		t.Errorf("%d applies on a refused host, want 0", applies.Load())
	}
	var refusal string
	for _, e := range events {
		if e.Type == runner.EventResult && e.Status == runner.StatusFailed {
			refusal = e.Task + ": " + e.Msg
		}
	}
	for _, w := range []string{"saved plan: refused: its plan differs", `task "second" (item="b"): ok, was would change`, "commands removed: touch " + filepath.Join(dir, "b")} {
		if !strings.Contains(refusal, w) {
			t.Errorf("refusal %q, want it to contain %q", refusal, w)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "first")); err == nil {
		t.Error("a refused host was changed")
	}

	// As approved: it runs.
	if err := os.Remove(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	events, _ = run(runner.Options{Approved: saved})
	if applies.Load() != 3 {
		t.Errorf("%d applies, want 3", applies.Load())
	}
	matched := false
	for _, e := range events {
		if e.Type == runner.EventResult && e.Status == runner.StatusFailed {
			t.Errorf("failed: %s: %s", e.Task, e.Msg)
		}
		matched = matched || e.Type == runner.EventNotice && strings.Contains(e.Msg, "plan matches the saved plan")
	}
	if !matched {
		t.Error("no notice says the plan matches")
	}
}

func commandsOf(tp runner.TaskPlan) []string {
	var out []string
	for _, c := range tp.Changes {
		out = append(out, c.Commands...)
	}
	return out
}
