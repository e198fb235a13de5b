package runner_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/transport/local"
)

// gate is a module whose Preflight refuses the hosts it is told to.
type gate struct {
	refuse  bool
	checks  *atomic.Int32
	applies *atomic.Int32
}

type gateArgs struct {
	Refuse bool `yaml:"refuse"`
}

func (g gate) Preflight(ctx context.Context, h modules.ReadOnlyHost) error {
	if g.refuse {
		return errors.New(h.Name() + ": not the server the inventory means")
	}
	return nil
}

func (g gate) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	g.checks.Add(1)
	c := modules.Change{Summary: "change"}
	c.Cmd("true")
	return &modules.Plan{Changes: []modules.Change{c}}, nil
}

func (g gate) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	g.applies.Add(1)
	return nil, nil
}

// A Preflight refusal stops its host before the play's first task, even
// when the refusing task comes last; the other hosts go on; a task skipped
// by its condition, or one that ignores errors, does not stop it.
func TestPreflightComesBeforeTheFirstTask(t *testing.T) {
	var checks, applies atomic.Int32
	reg := modules.NewRegistry(modules.Spec{
		Name: "gate", Summary: "test", Args: gateArgs{},
		New: func(d modules.Decoder) (modules.Module, error) {
			var a gateArgs
			if err := d.Decode(&a); err != nil {
				return nil, err
			}
			return gate{refuse: a.Refuse, checks: &checks, applies: &applies}, nil
		},
	})
	pb, err := playbooks.LoadBytes("play.yml", []byte(`
- hosts: all
  gather_facts: false
  tasks:
    - name: first
      gate: {}
    - name: skipped refusal
      gate: {refuse: true}
      when: false
    - name: ignored refusal
      gate: {refuse: true}
      when: inventory_hostname == "l2"
      ignore_errors: true
    - name: last
      gate: {refuse: "{{ inventory_hostname == 'l1' }}"}
`), "", reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, check := range []bool{true, false} {
		checks.Store(0)
		applies.Store(0)
		var results []string
		r := &runner.Runner{Dialer: local.Dialer{}, Templates: tmpl.New(), Options: runner.Options{Check: check},
			Events: func(e runner.Event) {
				if e.Type == runner.EventResult {
					results = append(results, e.Host+" "+e.Task+"="+string(e.Status))
				}
			}}
		recap, err := r.Run(context.Background(), pb, localInventory(2), "")
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(results, ", ")
		if !strings.Contains(got, "l1 preflight: last=failed") || strings.Contains(got, "l1 first=") {
			t.Errorf("check=%v: l1 ran a task before its refusal: %s", check, got)
		}
		if strings.Contains(got, "l2 preflight") || !strings.Contains(got, "l2 last=") {
			t.Errorf("check=%v: l2 did not go on: %s", check, got)
		}
		if recap.Hosts[0].Failed != 1 || recap.Hosts[1].Failed != 0 {
			t.Errorf("check=%v: recap %+v", check, recap.Hosts)
		}
		if wantApplies := int32(3 * btoi(!check)); applies.Load() != wantApplies {
			t.Errorf("check=%v: %d applies, want %d (l2's three tasks)", check, applies.Load(), wantApplies)
		}
	}
}
