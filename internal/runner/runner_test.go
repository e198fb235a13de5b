package runner_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/transport"
	"github.com/nixbook/nixbook/internal/transport/local"
)

// recorder is a module that counts its Check and Apply calls and tries to
// sneak a mutating command through its read-only host.
type recorder struct {
	checks, applies *atomic.Int32
	change          bool
	sneak           bool
	sneakErr        *atomic.Value
	notYet          bool
}

type recorderArgs struct {
	Change bool `yaml:"change"`
	Sneak  bool `yaml:"sneak"`
	NotYet bool `yaml:"not_yet"`
}

func (m recorder) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	m.checks.Add(1)
	if _, ok := h.(modules.Host); ok {
		return nil, fmt.Errorf("Check received a host that can change things")
	}
	if m.notYet {
		return nil, modules.NotYet(errors.New("zpool not found"))
	}
	if m.sneak {
		_, err := h.Probe(ctx, transport.Cmd{Args: []string{"rm", "-rf", "/nonexistent-nixbook-test"}})
		m.sneakErr.Store(fmt.Sprint(err))
	}
	p := &modules.Plan{}
	if m.change {
		c := modules.Change{Summary: "change something"}
		c.Cmd("touch", "/nonexistent")
		p.Changes = append(p.Changes, c)
	}
	return p, nil
}

func (m recorder) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	m.applies.Add(1)
	return modules.Output{"applied": true}, nil
}

func recorderRegistry(checks, applies *atomic.Int32, sneakErr *atomic.Value) *modules.Registry {
	return modules.NewRegistry(modules.Spec{
		Name: "record", Summary: "test", Args: recorderArgs{},
		New: func(dec modules.Decoder) (modules.Module, error) {
			var a recorderArgs
			if err := dec.Decode(&a); err != nil {
				return nil, err
			}
			return recorder{checks: checks, applies: applies, change: a.Change, sneak: a.Sneak, sneakErr: sneakErr, notYet: a.NotYet}, nil
		},
	})
}

func localInventory(n int) *inventory.Inventory {
	inv := &inventory.Inventory{}
	for i := 1; i <= n; i++ {
		inv.Hosts = append(inv.Hosts, &inventory.Host{Name: fmt.Sprintf("l%d", i), Groups: []string{"all"}, Vars: map[string]any{}})
	}
	return inv
}

func TestDryRunNeverApplies(t *testing.T) {
	var checks, applies atomic.Int32
	var sneak atomic.Value
	reg := recorderRegistry(&checks, &applies, &sneak)
	pb, err := playbooks.LoadBytes("play.yml", []byte(`
- hosts: all
  gather_facts: false
  tasks:
    - name: changes
      record: {change: true}
    - name: sneaks
      record: {sneak: true}
    - name: nothing to do
      record: {}
`), "", reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, check := range []bool{true, false} {
		checks.Store(0)
		applies.Store(0)
		var mu sync.Mutex
		statuses := map[string]runner.Status{}
		r := &runner.Runner{Dialer: local.Dialer{}, Templates: tmpl.New(), Options: runner.Options{Check: check},
			Events: func(e runner.Event) {
				if e.Type == runner.EventResult {
					mu.Lock()
					statuses[e.Host+"/"+e.Task] = e.Status
					mu.Unlock()
				}
			}}
		recap, err := r.Run(context.Background(), pb, localInventory(3), "")
		if err != nil {
			t.Fatal(err)
		}
		if checks.Load() != 9 {
			t.Errorf("check=%v: %d Check calls, want 9", check, checks.Load())
		}
		wantApplies := int32(3)
		wantStatus := runner.StatusChanged
		if check {
			wantApplies, wantStatus = 0, runner.StatusWouldChange
		}
		if applies.Load() != wantApplies {
			t.Errorf("check=%v: %d Apply calls, want %d", check, applies.Load(), wantApplies)
		}
		if got := statuses["l2/changes"]; got != wantStatus {
			t.Errorf("check=%v: status %q, want %q", check, got, wantStatus)
		}
		if got := statuses["l2/nothing to do"]; got != runner.StatusOK {
			t.Errorf("check=%v: empty plan status %q, want ok", check, got)
		}
		if got := fmt.Sprint(sneak.Load()); !strings.Contains(got, "read-only") {
			t.Errorf("a mutating probe was not refused: %v", got)
		}
		if recap.Outcome() != runner.OutcomeOK {
			t.Errorf("outcome %d", recap.Outcome())
		}
	}
}

func TestBatches(t *testing.T) {
	hosts := make([]int, 20)
	for i := range hosts {
		hosts[i] = i
	}
	sizes := func(b [][]int) string {
		var s []string
		for _, x := range b {
			s = append(s, fmt.Sprint(len(x)))
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		serial []playbooks.Batch
		want   string
	}{
		{nil, "20"},
		{[]playbooks.Batch{{Count: 3}}, "3,3,3,3,3,3,2"},
		{[]playbooks.Batch{{Percent: 30}}, "6,6,6,2"},
		{[]playbooks.Batch{{Count: 1}, {Count: 5}, {Count: 10}}, "1,5,10,4"},
		{[]playbooks.Batch{{Count: 1}, {Percent: 25}}, "1,5,5,5,4"},
		{[]playbooks.Batch{{Percent: 1}}, strings.TrimSuffix(strings.Repeat("1,", 20), ",")},
		{[]playbooks.Batch{{Count: 50}}, "20"},
	} {
		if got := sizes(runner.Batches(hosts, tc.serial)); got != tc.want {
			t.Errorf("serial %+v: batches %s, want %s", tc.serial, got, tc.want)
		}
	}
}

func TestTagsSelect(t *testing.T) {
	for _, tc := range []struct {
		task, only, skip []string
		want             bool
	}{
		{nil, nil, nil, true},
		{[]string{"a"}, nil, nil, true},
		{[]string{"never"}, nil, nil, false},
		{[]string{"never", "a"}, []string{"a"}, nil, true},
		{[]string{"a"}, []string{"b"}, nil, false},
		{[]string{"always"}, []string{"b"}, nil, true},
		{[]string{"always"}, nil, []string{"always"}, false},
		{[]string{"a"}, nil, []string{"a"}, false},
		{nil, []string{"untagged"}, nil, true},
		{[]string{"a"}, []string{"tagged"}, nil, true},
		{[]string{"a"}, []string{"all"}, nil, true},
		{[]string{"never"}, []string{"all"}, nil, false},
	} {
		if got := runner.TagsSelect(tc.task, tc.only, tc.skip); got != tc.want {
			t.Errorf("task %v only %v skip %v: %v, want %v", tc.task, tc.only, tc.skip, got, tc.want)
		}
	}
}

func TestOmitLeavesTheModuleDefault(t *testing.T) {
	var checks, applies atomic.Int32
	var sneak atomic.Value
	reg := recorderRegistry(&checks, &applies, &sneak)
	pb, err := playbooks.LoadBytes("play.yml", []byte(`
- hosts: all
  gather_facts: false
  tasks:
    - name: omitted
      record: {change: "{{ unset_var | default(omit) }}"}
    - name: given
      record: {change: "{{ set_var | default(omit) }}"}
`), "", reg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]runner.Status{}
	r := &runner.Runner{Dialer: local.Dialer{}, Templates: tmpl.New(), Options: runner.Options{ExtraVars: map[string]any{"set_var": true}},
		Events: func(e runner.Event) {
			if e.Type == runner.EventResult {
				mu.Lock()
				got[e.Task] = e.Status
				if e.Status == runner.StatusFailed {
					t.Errorf("%s failed: %s", e.Task, e.Msg)
				}
				mu.Unlock()
			}
		}}
	if _, err := r.Run(context.Background(), pb, localInventory(1), ""); err != nil {
		t.Fatal(err)
	}
	if got["omitted"] != runner.StatusOK || got["given"] != runner.StatusChanged {
		t.Errorf("statuses %v, want omitted ok (default false) and given changed", got)
	}
}

func TestChrootNotPrepared(t *testing.T) {
	var checks, applies atomic.Int32
	var sneak atomic.Value
	reg := recorderRegistry(&checks, &applies, &sneak)
	root := t.TempDir() // no bin/sh: nothing prepared it
	pb, err := playbooks.LoadBytes("play.yml", []byte(`
- hosts: all
  gather_facts: false
  tasks:
    - name: inside
      record: {change: true}
      chroot: `+root+`
`), "", reg)
	if err != nil {
		t.Fatal(err)
	}
	// A dry run plans the task on the host itself, whose /mnt the chroot
	// would share; a real run refuses without calling Check.
	for _, tc := range []struct {
		check  bool
		status runner.Status
		msg    string
		checks int32
	}{
		{true, runner.StatusWouldChange, "planned outside the chroot " + root + ", which an earlier task would prepare", 1},
		{false, runner.StatusFailed, "prepare it with the chroot module first", 0},
	} {
		checks.Store(0)
		var got runner.Event
		r := &runner.Runner{Dialer: local.Dialer{}, Templates: tmpl.New(), Options: runner.Options{Check: tc.check},
			Events: func(e runner.Event) {
				if e.Type == runner.EventResult {
					got = e
				}
			}}
		if _, err := r.Run(context.Background(), pb, localInventory(1), ""); err != nil {
			t.Fatal(err)
		}
		if got.Status != tc.status || !strings.Contains(got.Msg, tc.msg) {
			t.Errorf("check=%v: %s %q, want %s with %q", tc.check, got.Status, got.Msg, tc.status, tc.msg)
		}
		if checks.Load() != tc.checks {
			t.Errorf("check=%v: Check ran %d times, want %d", tc.check, checks.Load(), tc.checks)
		}
	}
	if applies.Load() != 0 {
		t.Errorf("Apply ran %d times against an unprepared root", applies.Load())
	}
}

// A dry run cannot inspect what an earlier task would create (the system a
// kexec boots, a partition): after a task that would change the host, such a
// task is unknown until applied, counted apart; without one it fails.
func TestNotYetIsUnknownAfterAChange(t *testing.T) {
	var checks, applies atomic.Int32
	var sneak atomic.Value
	reg := recorderRegistry(&checks, &applies, &sneak)
	for _, tc := range []struct {
		name    string
		tasks   string
		check   bool
		status  runner.Status
		outcome runner.Outcome
	}{
		{"after a change, dry", "    - name: boots\n      record: {change: true}\n", true, runner.StatusUnknown, runner.OutcomeOK},
		{"nothing before it, dry", "", true, runner.StatusFailed, runner.OutcomeFailed},
		{"after a change, real", "    - name: boots\n      record: {change: true}\n", false, runner.StatusFailed, runner.OutcomeFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pb, err := playbooks.LoadBytes("play.yml", []byte("- hosts: all\n  gather_facts: false\n  tasks:\n"+tc.tasks+"    - name: pool\n      record: {not_yet: true}\n"), "", reg)
			if err != nil {
				t.Fatal(err)
			}
			var got runner.Event
			r := &runner.Runner{Dialer: local.Dialer{}, Templates: tmpl.New(), Options: runner.Options{Check: tc.check},
				Events: func(e runner.Event) {
					if e.Type == runner.EventResult && e.Task == "pool" {
						got = e
					}
				}}
			recap, err := r.Run(context.Background(), pb, localInventory(1), "")
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.status || !strings.Contains(got.Msg, "zpool not found") {
				t.Errorf("pool: %s %q, want %s", got.Status, got.Msg, tc.status)
			}
			if o := recap.Outcome(); o != tc.outcome {
				t.Errorf("outcome %d, want %d", o, tc.outcome)
			}
			if want := btoi(tc.status == runner.StatusUnknown); recap.Hosts[0].Unknown != want {
				t.Errorf("recap %+v, want unknown=%d", recap.Hosts[0], want)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// downDialer reaches no host.
type downDialer struct{}

func (downDialer) Dial(ctx context.Context, t transport.Target, o transport.DialOptions) (transport.Conn, error) {
	return nil, fmt.Errorf("%w: dial %s: connection refused", transport.ErrUnreachable, t.Name)
}

// An API-driven first task (rescue) goes ahead on a host SSH cannot reach;
// the next task that needs SSH finds it unreachable.
func TestOfflineFirstTaskOnUnreachableHost(t *testing.T) {
	var checks, applies atomic.Int32
	var sneak atomic.Value
	reg := recorderRegistry(&checks, &applies, &sneak)
	spec, _ := reg.Lookup("record")
	offline := spec
	offline.Name, offline.Offline = "api", true
	reg = modules.NewRegistry(spec, offline)
	pb, err := playbooks.LoadBytes("play.yml", []byte(`
- hosts: all
  tasks:
    - name: through the API
      api: {change: true}
      when: not facts.rescue
    - name: over SSH
      record: {change: true}
`), "", reg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	r := &runner.Runner{Dialer: downDialer{}, Templates: tmpl.New(), Events: func(e runner.Event) {
		if e.Type == runner.EventResult {
			mu.Lock()
			got = append(got, fmt.Sprintf("%s=%s", e.Task, e.Status))
			mu.Unlock()
		}
	}}
	recap, err := r.Run(context.Background(), pb, localInventory(1), "")
	if err != nil {
		t.Fatal(err)
	}
	if want := "through the API=changed over SSH=unreachable"; strings.Join(got, " ") != want {
		t.Errorf("results %q, want %q", strings.Join(got, " "), want)
	}
	if applies.Load() != 1 || recap.Outcome() != runner.OutcomeUnreachable {
		t.Errorf("%d applies, outcome %d", applies.Load(), recap.Outcome())
	}

	// Without an API-driven first task the host is unreachable at once.
	got = nil
	pb2, _ := playbooks.LoadBytes("play.yml", []byte("- hosts: all\n  tasks:\n    - record: {change: true}\n"), "", reg)
	if _, err := r.Run(context.Background(), pb2, localInventory(1), ""); err != nil {
		t.Fatal(err)
	}
	if want := "connect=unreachable"; strings.Join(got, " ") != want {
		t.Errorf("results %q, want %q", strings.Join(got, " "), want)
	}
}

// TestTemplateFailureFailsOnlyItsHost: a template that would have panicked
// inside the Jinja engine (modulo by zero, here fed by a host's own
// variable) fails its task on that host; the other host goes on and the
// recap covers both.
func TestTemplateFailureFailsOnlyItsHost(t *testing.T) {
	var checks, applies atomic.Int32
	var sneak atomic.Value
	reg := recorderRegistry(&checks, &applies, &sneak)
	pb, err := playbooks.LoadBytes("play.yml", []byte(`
- hosts: all
  gather_facts: false
  tasks:
    - name: divides
      record: {change: "{{ 10 % divisor == 0 }}"}
      when: "10 % divisor < 100"
    - name: after
      record: {}
`), "", reg)
	if err != nil {
		t.Fatal(err)
	}
	inv := localInventory(2)
	inv.Hosts[0].Vars["divisor"] = 0
	inv.Hosts[1].Vars["divisor"] = 2
	var mu sync.Mutex
	got := map[string]runner.Event{}
	r := &runner.Runner{Dialer: local.Dialer{}, Templates: tmpl.New(),
		Events: func(e runner.Event) {
			if e.Type == runner.EventResult {
				mu.Lock()
				got[e.Host+"/"+e.Task] = e
				mu.Unlock()
			}
		}}
	recap, err := r.Run(context.Background(), pb, inv, "")
	if err != nil {
		t.Fatal(err)
	}
	if e := got["l1/divides"]; e.Status != runner.StatusFailed || !strings.Contains(e.Msg, "modulo by zero") {
		t.Errorf("l1/divides: %s %q, want failed with modulo by zero", e.Status, e.Msg)
	}
	if _, ran := got["l1/after"]; ran {
		t.Errorf("l1 went on after its failed task")
	}
	for _, task := range []string{"divides", "after"} {
		if e := got["l2/"+task]; e.Status == runner.StatusFailed || e.Status == "" {
			t.Errorf("l2/%s: %q %q, want it to succeed", task, e.Status, e.Msg)
		}
	}
	if len(recap.Hosts) != 2 {
		t.Fatalf("recap has %d hosts, want 2", len(recap.Hosts))
	}
	if recap.Outcome() != runner.OutcomeFailed {
		t.Errorf("outcome %d, want failed", recap.Outcome())
	}
}

// TestReconnectThatTimesOutIsUnreachable: a module's Reconnect that ends
// with its deadline on a host that never answers again leaves the host
// unreachable, not failed.
func TestReconnectThatTimesOutIsUnreachable(t *testing.T) {
	m := hook{apply: func(ctx context.Context, h modules.Host) error {
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		return h.Reconnect(ctx, transport.DialOptions{})
	}}
	got, recap := runHook(t, &onceDialer{}, nil, modules.Spec{}, m, "- hosts: all\n  gather_facts: false\n  tasks:\n    - {name: reboot, hook: {}}\n")
	if want := "reboot=unreachable"; strings.Join(got, " ") != want {
		t.Errorf("results %q, want %q", strings.Join(got, " "), want)
	}
	if recap.Outcome() != runner.OutcomeUnreachable {
		t.Errorf("outcome %d, want unreachable", recap.Outcome())
	}
}
