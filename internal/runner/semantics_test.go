package runner_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/assert"
	"github.com/nixbook/nixbook/internal/modules/command"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/transport/local"
)

// semanticsRegistry is the builtin modules and the recorder, which plans a
// change or not as told and records its calls.
func semanticsRegistry(checks, applies *atomic.Int32) *modules.Registry {
	var sneak atomic.Value
	rec, _ := recorderRegistry(checks, applies, &sneak).Lookup("record")
	return modules.NewRegistry(rec, command.Spec, command.ShellSpec, assert.NewSpec(tmpl.New()))
}

// TestTaskSemantics runs small plays on this machine (the local transport)
// and reads each task's status per host from the events: Ansible's rules
// for conditions, retries, loops, result overrides, errors and handlers,
// and a dry run's unknowns, without an SSH server.
func TestTaskSemantics(t *testing.T) {
	tests := []struct {
		name  string
		hosts int
		check bool
		tasks string
		extra string // after tasks: handlers, play keys
		want  string // "host/task=status" lines, sorted
		// never, when set, makes want a subset of the statuses (hosts race)
		// and lists "host/task" pairs that must not run at all.
		never []string
		end   runner.Outcome
	}{
		{
			name:  "when",
			tasks: "- {name: skipped, record: {change: true}, when: false}\n- {name: taken, record: {change: true}, when: 1 == 1}\n",
			want:  "l1/skipped=skipped l1/taken=changed",
		},
		{
			name:  "changed_when and failed_when override the result",
			tasks: "- {name: quiet, record: {change: true}, changed_when: false}\n- {name: judged, command: 'true', failed_when: true, ignore_errors: true}\n- {name: after, record: {}}\n",
			want:  "l1/after=ok l1/judged=ignored l1/quiet=ok",
		},
		{
			name:  "a failure stops its host only",
			hosts: 2,
			tasks: "- {name: fails on l1, command: 'false', when: inventory_hostname == 'l1'}\n- {name: next, record: {}}\n",
			want:  "l1/fails on l1=failed l2/fails on l1=skipped l2/next=ok",
			end:   runner.OutcomeFailed,
		},
		{
			// Hosts run their tasks concurrently: any_errors_fatal stops
			// every host at its next task once the failure is known.
			name:  "any_errors_fatal stops every host",
			hosts: 2,
			tasks: "- {name: fails on l1, command: 'false', when: inventory_hostname == 'l1'}\n- {name: slow on l2, command: 'sleep 0.5', when: inventory_hostname == 'l2'}\n- {name: next, record: {}}\n",
			extra: "  any_errors_fatal: true\n",
			want:  "l1/fails on l1=failed",
			never: []string{"l1/next", "l2/next"},
			end:   runner.OutcomeFailed,
		},
		{
			name:  "until retries until the condition holds",
			tasks: "- {name: third time, shell: 'n=$(cat {{ dir }}/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > {{ dir }}/n; echo $n', register: r, until: r.stdout == '3', retries: 5, delay: 0}\n- {name: attempts, assert: {that: ['r.attempts == 3']}}\n",
			want:  "l1/attempts=ok l1/third time=changed",
		},
		{
			// One result per item, then the task's.
			name:  "a loop's items, each with its condition",
			tasks: "- {name: items, record: {change: true}, loop: [1, 2, 3], when: item != 2, register: looped}\n- {name: counted, assert: {that: ['looped.results | length == 3', 'looped.results[1].skipped']}}\n",
			want:  "l1/counted=ok l1/items=changed l1/items=changed l1/items=changed l1/items=skipped",
		},
		{
			name:  "handlers run once, and only when notified by a change",
			tasks: "- {name: changes, record: {change: true}, notify: h}\n- {name: again, record: {change: true}, notify: h}\n- {name: stays, record: {}, notify: quiet}\n",
			extra: "  handlers:\n    - {name: h, record: {change: true}}\n    - {name: quiet, record: {change: true}}\n",
			want:  "l1/again=changed l1/changes=changed l1/h=changed l1/stays=ok",
		},
		{
			name:  "a dry run: what depends on a would-be change is unknown",
			check: true,
			tasks: "- {name: partition, record: {change: true}}\n- {name: pool, record: {not_yet: true}}\n- {name: plain, record: {}}\n",
			want:  "l1/partition=would change l1/plain=ok l1/pool=unknown until applied",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var checks, applies atomic.Int32
			dir := t.TempDir()
			play := fmt.Sprintf("- hosts: all\n  gather_facts: false\n  vars: {dir: %q}\n%s  tasks:\n%s", dir, tt.extra, indent(tt.tasks, "    "))
			pb, err := playbooks.LoadBytes(filepath.Join(dir, "play.yml"), []byte(play), dir, semanticsRegistry(&checks, &applies))
			if err != nil {
				t.Fatalf("load:\n%s\n%v", play, err)
			}
			var mu sync.Mutex
			var got []string
			r := &runner.Runner{Dialer: local.Dialer{}, Templates: tmpl.New(), Options: runner.Options{Check: tt.check},
				Events: func(e runner.Event) {
					if e.Type == runner.EventResult {
						mu.Lock()
						got = append(got, e.Host+"/"+e.Task+"="+string(e.Status))
						mu.Unlock()
					}
				}}
			hosts := max(tt.hosts, 1)
			recap, err := r.Run(context.Background(), pb, localInventory(hosts), "")
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(got)
			g := strings.Join(got, " ")
			if tt.never == nil && g != tt.want {
				t.Errorf("statuses\n got %s\nwant %s", g, tt.want)
			}
			if tt.never != nil && !strings.Contains(g, tt.want) {
				t.Errorf("statuses %s lack %s", g, tt.want)
			}
			for _, n := range tt.never {
				if strings.Contains(" "+g, " "+n+"=") {
					t.Errorf("%s ran: %s", n, g)
				}
			}
			if recap.Outcome() != tt.end {
				t.Errorf("outcome %d, want %d", recap.Outcome(), tt.end)
			}
		})
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestRunsAtOnce: a Runner holds configuration only; each Run keeps its own
// state, so one Runner serves two runs at the same time.
func TestRunsAtOnce(t *testing.T) {
	var checks, applies atomic.Int32
	pb, err := playbooks.LoadBytes("play.yml", []byte(`
- hosts: all
  gather_facts: false
  tasks:
    - {name: work, record: {change: true}, register: done}
    - {name: counted, assert: {that: ['done.changed', 'play_hosts | length == expected']}}
`), "", semanticsRegistry(&checks, &applies))
	if err != nil {
		t.Fatal(err)
	}
	r := &runner.Runner{Dialer: local.Dialer{}, Templates: tmpl.New()}
	var wg sync.WaitGroup
	recaps := make([]*runner.Recap, 2)
	for i, n := range []int{2, 5} {
		wg.Go(func() {
			inv := localInventory(n)
			for _, h := range inv.Hosts {
				h.Vars["expected"] = n
			}
			recap, err := r.Run(context.Background(), pb, inv, "")
			if err != nil {
				t.Error(err)
				return
			}
			recaps[i] = recap
		})
	}
	wg.Wait()
	for i, n := range []int{2, 5} {
		if recaps[i] == nil {
			continue
		}
		if len(recaps[i].Hosts) != n || recaps[i].Outcome() != runner.OutcomeOK {
			t.Errorf("run of %d hosts: %+v", n, recaps[i].Hosts)
		}
	}
	if applies.Load() != 7 {
		t.Errorf("%d applies, want 7", applies.Load())
	}
}

// shareModule records the OVH API rate budget each host's view has.
type shareModule struct{ got *sync.Map }

func (m shareModule) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	api, err := h.OVH("")
	if err != nil {
		return nil, err
	}
	m.got.Store(h.Name(), api.Limiter())
	return &modules.Plan{}, nil
}

func (m shareModule) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	return nil, nil
}

// TestOVHBudgetIsTheRuns: the OVH API's rate budget, which the runner owns,
// is one for every host of a run on one account, and another run's is
// another: nothing is shared through the process.
func TestOVHBudgetIsTheRuns(t *testing.T) {
	var got sync.Map
	reg := modules.NewRegistry(modules.Spec{Name: "share", Summary: "test", Args: struct{}{},
		New: func(modules.Decoder) (modules.Module, error) { return shareModule{got: &got}, nil }})
	play := `- hosts: all
  gather_facts: false
  vars:
    ovh_endpoint: http://127.0.0.1:9/1.0
    ovh_application_key: ak
    ovh_application_secret: as
    ovh_consumer_key: ck
  tasks:
    - share: {}
`
	pb, err := playbooks.LoadBytes("play.yml", []byte(play), "", reg)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner.Runner{Dialer: local.Dialer{}, Templates: tmpl.New()}
	budgets := func() map[any]bool {
		got.Clear()
		if _, err := r.Run(context.Background(), pb, localInventory(3), ""); err != nil {
			t.Fatal(err)
		}
		seen := map[any]bool{}
		got.Range(func(_, v any) bool { seen[v] = true; return true })
		return seen
	}
	first, second := budgets(), budgets()
	if len(first) != 1 || len(second) != 1 {
		t.Fatalf("the hosts of a run got %d and %d values, want one each", len(first), len(second))
	}
	for v := range first {
		if second[v] {
			t.Error("two runs share a value")
		}
	}
}

// inputModule records, per host, the variable its task was built with and
// whether its view offered the whole scope.
type inputModule struct {
	service string
	seen    *sync.Map
}

func (m inputModule) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	m.seen.Store(h.Name(), fmt.Sprintf("service=%s scope=%t", m.service, modules.Scope(h) != nil))
	return &modules.Plan{}, nil
}

func (m inputModule) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	return nil, nil
}

// TestModuleInputs: a task's module is built for each host with that
// host's variables (arguments with a var tag default from them), and only
// a module whose Spec declares Scope sees the variables themselves.
func TestModuleInputs(t *testing.T) {
	for _, scoped := range []bool{false, true} {
		var seen sync.Map
		reg := modules.NewRegistry(modules.Spec{Name: "input", Summary: "test", Args: struct{}{}, Scope: scoped,
			New: func(d modules.Decoder) (modules.Module, error) {
				m := inputModule{seen: &seen}
				if src, ok := d.(modules.VarSource); ok {
					v, _ := src.Var("ovh_service")
					m.service, _ = v.(string)
				}
				return m, nil
			}})
		pb, err := playbooks.LoadBytes("play.yml", []byte("- hosts: all\n  gather_facts: false\n  tasks:\n    - input: {}\n"), "", reg)
		if err != nil {
			t.Fatal(err)
		}
		inv := localInventory(2)
		for _, h := range inv.Hosts {
			h.Vars["ovh_service"] = "ns-" + h.Name
		}
		r := &runner.Runner{Dialer: local.Dialer{}, Templates: tmpl.New()}
		if _, err := r.Run(context.Background(), pb, inv, ""); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"l1", "l2"} {
			got, _ := seen.Load(name)
			if want := fmt.Sprintf("service=ns-%s scope=%t", name, scoped); got != want {
				t.Errorf("Scope %t, host %s: %v, want %s", scoped, name, got, want)
			}
		}
	}
}
