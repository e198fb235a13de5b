package runner_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/transport"
	"github.com/nixbook/nixbook/internal/transport/local"
)

// hook is a module that always plans a change and hands its host views to
// the test's functions.
type hook struct {
	check func(ctx context.Context, h modules.ReadOnlyHost) error
	apply func(ctx context.Context, h modules.Host) error
}

func (m hook) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	if m.check != nil {
		if err := m.check(ctx, h); err != nil {
			return nil, err
		}
	}
	c := modules.Change{Summary: "change"}
	c.Cmd("true")
	return &modules.Plan{Changes: []modules.Change{c}}, nil
}

func (m hook) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	if m.apply == nil {
		return nil, nil
	}
	return nil, m.apply(ctx, h)
}

// runHook runs playbook (whose tasks use the module `hook`) on inv (nil:
// one local host) and returns "task=status" per task result and the recap.
func runHook(t *testing.T, d transport.Dialer, inv *inventory.Inventory, spec modules.Spec, m hook, playbook string) ([]string, *runner.Recap) {
	t.Helper()
	spec.Name, spec.Summary, spec.Args = "hook", "test", struct{}{}
	spec.New = func(modules.Decoder) (modules.Module, error) { return m, nil }
	pb, err := playbooks.LoadBytes("play.yml", []byte(playbook), "", modules.NewRegistry(spec))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	r := &runner.Runner{Dialer: d, Templates: tmpl.New(), Events: func(e runner.Event) {
		if e.Type == runner.EventResult {
			mu.Lock()
			got = append(got, fmt.Sprintf("%s=%s", e.Task, e.Status))
			mu.Unlock()
			t.Logf("%s: %s %s", e.Task, e.Status, e.Msg)
		}
	}}
	if inv == nil {
		inv = localInventory(1)
	}
	recap, err := r.Run(context.Background(), pb, inv, "")
	if err != nil {
		t.Fatal(err)
	}
	return got, recap
}

// onceDialer reaches the host once, then no more: a host that went down
// for good.
type onceDialer struct{ dials atomic.Int32 }

func (d *onceDialer) Dial(ctx context.Context, t transport.Target, o transport.DialOptions) (transport.Conn, error) {
	if d.dials.Add(1) == 1 {
		return &local.Conn{}, nil
	}
	return nil, fmt.Errorf("%w: dial %s: connection refused", transport.ErrUnreachable, t.Name)
}

// TestScopeInCheckAndApply: a module whose Spec declares Scope sees the
// host's variables in Apply as in Check; any other sees them in neither.
func TestScopeInCheckAndApply(t *testing.T) {
	for _, scoped := range []bool{false, true} {
		var inCheck, inApply any
		m := hook{
			check: func(ctx context.Context, h modules.ReadOnlyHost) error {
				inCheck = modules.Scope(h)["greeting"]
				return nil
			},
			apply: func(ctx context.Context, h modules.Host) error {
				inApply = modules.Scope(h)["greeting"]
				return nil
			},
		}
		runHook(t, local.Dialer{}, nil, modules.Spec{Scope: scoped}, m, "- hosts: all\n  gather_facts: false\n  vars: {greeting: hello}\n  tasks:\n    - hook: {}\n")
		want := map[bool]any{true: "hello", false: nil}[scoped]
		if inCheck != want || inApply != want {
			t.Errorf("Scope %t: greeting %v in Check, %v in Apply, want %v in both", scoped, inCheck, inApply, want)
		}
	}
}

// recordingDialer reaches every host and records how it was asked to.
type recordingDialer struct {
	mu    sync.Mutex
	dials []string
}

func (d *recordingDialer) Dial(ctx context.Context, t transport.Target, o transport.DialOptions) (transport.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dials = append(d.dials, fmt.Sprintf("%s address=%q at=%q", t.Name, t.Address, o.Address))
	return &local.Conn{}, nil
}

// TestReconnectElsewhereKeepsTheTarget: a reconnect at another of the
// host's addresses hands the dialer the host as the inventory defines it
// and the other address apart, so that the host's ssh config block (found
// by its address as written) still applies.
func TestReconnectElsewhereKeepsTheTarget(t *testing.T) {
	d := &recordingDialer{}
	m := hook{apply: func(ctx context.Context, h modules.Host) error {
		return h.Reconnect(ctx, transport.DialOptions{Address: "2001:db8::7"})
	}}
	inv := localInventory(1)
	inv.Hosts[0].Address = "ks1.example.net"
	runHook(t, d, inv, modules.Spec{}, m, "- hosts: all\n  gather_facts: false\n  tasks:\n    - hook: {}\n")
	want := []string{`l1 address="ks1.example.net" at=""`, `l1 address="ks1.example.net" at="2001:db8::7"`}
	if !slices.Equal(d.dials, want) {
		t.Errorf("dials\n%q\nwant\n%q", d.dials, want)
	}
}
