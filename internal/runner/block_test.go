package runner_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/builtin"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/transport/local"
)

// runLocal runs a playbook on one local host and returns its results as
// "task=status" lines, in order, with its recap.
func runLocal(t *testing.T, src string, opts runner.Options) ([]string, runner.HostRecap) {
	t.Helper()
	eng := tmpl.New()
	pb, err := playbooks.LoadBytes("play.yml", []byte(src), "", builtin.Registry(eng, eng))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	r := &runner.Runner{Dialer: local.Dialer{}, Templates: eng, Options: opts, Events: func(e runner.Event) {
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
	return got, recap.Hosts[0]
}

func TestBlocks(t *testing.T) {
	tests := []struct {
		name   string
		tasks  string
		want   string
		recap  string // ok changed failed skipped ignored rescued
		failed bool
	}{
		{"rescued", `
    - block:
        - {name: a, fail: {msg: boom}}
        - {name: not run, debug: {msg: x}}
      rescue:
        - {name: r, debug: {msg: "{{ ansible_failed_task.name }}: {{ ansible_failed_result.msg }}"}}
      always:
        - {name: al, debug: {msg: x}}
    - {name: after, debug: {msg: x}}
`, "a=failed r=ok al=ok after=ok", "3 0 0 0 0 1", false},
		{"no rescue: always runs, then the host stops", `
    - block:
        - {name: a, fail: {msg: boom}}
      always:
        - {name: al, debug: {msg: x}}
    - {name: after, debug: {msg: x}}
`, "a=failed al=ok", "1 0 1 0 0 0", true},
		{"rescue fails", `
    - block:
        - {name: a, fail: {msg: boom}}
      rescue:
        - {name: r, fail: {msg: again}}
      always:
        - {name: al, debug: {msg: x}}
    - {name: after, debug: {msg: x}}
`, "a=failed r=failed al=ok", "1 0 1 0 0 1", true},
		{"nothing fails", `
    - block:
        - {name: a, debug: {msg: x}}
      rescue:
        - {name: r, debug: {msg: x}}
      always:
        - {name: al, debug: {msg: x}}
`, "a=ok al=ok", "2 0 0 0 0 0", false},
		{"when on the block", `
    - when: false
      block:
        - {name: a, debug: {msg: x}}
      always:
        - {name: al, debug: {msg: x}}
`, "a=skipped al=skipped", "0 0 0 2 0 0", false},
		{"ignore_errors on the block", `
    - ignore_errors: true
      block:
        - {name: a, fail: {msg: boom}}
        - {name: b, debug: {msg: x}}
      rescue:
        - {name: r, debug: {msg: x}}
`, "a=ignored b=ok", "1 0 0 0 1 0", false},
		{"nested: the outer rescue takes an inner failure", `
    - block:
        - block:
            - {name: a, fail: {msg: boom}}
          always:
            - {name: inner always, debug: {msg: x}}
        - {name: not run, debug: {msg: x}}
      rescue:
        - {name: r, debug: {msg: x}}
`, "a=failed inner always=ok r=ok", "2 0 0 0 0 1", false},
		{"block vars", `
    - vars: {v: outer, w: block}
      block:
        - {name: a, vars: {v: task}, assert: {that: ["v == 'task'", "w == 'block'"]}}
`, "a=ok", "1 0 0 0 0 0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rc := runLocal(t, "- hosts: all\n  gather_facts: false\n  tasks:"+tt.tasks, runner.Options{})
			if s := strings.Join(got, " "); s != tt.want {
				t.Errorf("results: %s\nwant:     %s", s, tt.want)
			}
			if s := fmt.Sprint(rc.OK, rc.Changed, rc.Failed, rc.Skipped, rc.Ignored, rc.Rescued); s != tt.recap {
				t.Errorf("recap: %s, want %s", s, tt.recap)
			}
			rec := &runner.Recap{Hosts: []runner.HostRecap{rc}}
			if (rec.Outcome() != runner.OutcomeOK) != tt.failed {
				t.Errorf("outcome %d", rec.Outcome())
			}
		})
	}
}

// A task in a block is dry-run like any other: Apply is never called.
func TestBlockDryRun(t *testing.T) {
	got, rc := runLocal(t, `
- hosts: all
  gather_facts: false
  tasks:
    - block:
        - {name: a, command: "touch /nonexistent-nixbook-block"}
      always:
        - {name: al, debug: {msg: x}}
`, runner.Options{Check: true})
	if s := strings.Join(got, " "); s != "a=would change al=ok" || rc.Changed != 1 {
		t.Errorf("results: %s, recap %+v", s, rc)
	}
}

// --tags opens blocks: a block keeps the tasks selected.
func TestBlockTags(t *testing.T) {
	got, _ := runLocal(t, `
- hosts: all
  gather_facts: false
  tasks:
    - tags: setup
      block:
        - {name: a, debug: {msg: x}}
        - {name: b, debug: {msg: x}, tags: extra}
    - {name: c, debug: {msg: x}, tags: extra}
`, runner.Options{Tags: []string{"extra"}})
	if s := strings.Join(got, " "); s != "b=ok c=ok" {
		t.Errorf("results: %s", s)
	}
}
