package runner_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/facts"
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

// hookSpec is the module name, running m, with base's flags (Scope,
// Offline).
func hookSpec(name string, base modules.Spec, m hook) modules.Spec {
	base.Name, base.Summary, base.Args = name, "test", struct{}{}
	base.New = func(modules.Decoder) (modules.Module, error) { return m, nil }
	return base
}

// runHook runs playbook (whose tasks use the module `hook`) on inv (nil:
// one local host) and returns "task=status" per task result and the recap.
func runHook(t *testing.T, d transport.Dialer, inv *inventory.Inventory, spec modules.Spec, m hook, playbook string) ([]string, *runner.Recap) {
	t.Helper()
	return runHooks(t, d, inv, playbook, hookSpec("hook", spec, m))
}

// runHooks is runHook for a playbook whose tasks use specs.
func runHooks(t *testing.T, d transport.Dialer, inv *inventory.Inventory, playbook string, specs ...modules.Spec) ([]string, *runner.Recap) {
	t.Helper()
	pb, err := playbooks.LoadBytes("play.yml", []byte(playbook), "", modules.NewRegistry(specs...))
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

// TestFactsAfterAReconnect: a task never sees the facts of a boot its host
// may have left. After a module's reconnect (that did not gather facts
// itself) the next task gets them gathered afresh; after a reconnect that
// gave up, none at all, until the host answers again.
func TestFactsAfterAReconnect(t *testing.T) {
	t.Run("reconnected", func(t *testing.T) {
		var seen []*facts.Facts
		m := hook{
			check: func(ctx context.Context, h modules.ReadOnlyHost) error {
				seen = append(seen, h.Facts())
				return nil
			},
			apply: func(ctx context.Context, h modules.Host) error {
				if len(seen) > 1 {
					return nil
				}
				return h.Reconnect(ctx, transport.DialOptions{NewSystem: true})
			},
		}
		got, _ := runHook(t, local.Dialer{}, nil, modules.Spec{}, m, "- hosts: all\n  tasks:\n    - {name: reboot, hook: {}}\n    - {name: after, hook: {}}\n")
		if want := "gather facts=ok reboot=changed after=changed"; strings.Join(got, " ") != want {
			t.Fatalf("results %q, want %q", strings.Join(got, " "), want)
		}
		if len(seen) != 2 || seen[1] == seen[0] || seen[1].Hostname == "" {
			t.Errorf("the task after the reconnect sees the facts gathered before it: %p then %p", seen[0], seen[1])
		}
	})
	t.Run("gave up", func(t *testing.T) {
		d := &switchDialer{}
		var overAPI, overSSH *facts.Facts
		reboot := hook{apply: func(ctx context.Context, h modules.Host) error {
			d.down.Store(true)
			defer d.down.Store(false) // back for the tasks after
			ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			err := h.Reconnect(ctx, transport.DialOptions{})
			return fmt.Errorf("did not come back (%v)", err)
		}}
		api := hook{check: func(ctx context.Context, h modules.ReadOnlyHost) error {
			overAPI = h.Facts()
			return nil
		}}
		ssh := hook{check: func(ctx context.Context, h modules.ReadOnlyHost) error {
			overSSH = h.Facts()
			return nil
		}}
		got, _ := runHooks(t, d, nil, `
- hosts: all
  tasks:
    - block:
        - {name: reboot, hook: {}}
      rescue:
        - {name: through the API, api: {}}
        - {name: over SSH, ssh: {}}
`, hookSpec("hook", modules.Spec{}, reboot), hookSpec("api", modules.Spec{Offline: true}, api), hookSpec("ssh", modules.Spec{}, ssh))
		if want := "gather facts=ok reboot=failed through the API=changed over SSH=changed"; strings.Join(got, " ") != want {
			t.Fatalf("results %q, want %q", strings.Join(got, " "), want)
		}
		if overAPI == nil || overAPI.Hostname != "" || overAPI.BootID != "" {
			t.Errorf("the task after a reconnect that gave up sees the facts of the boot before: hostname %q, boot %q", overAPI.Hostname, overAPI.BootID)
		}
		if overSSH == nil || overSSH.Hostname == "" || d.dials.Load() < 3 {
			t.Errorf("the task the runner dialed the host again for has no facts (%d dials)", d.dials.Load())
		}
	})
}

// switchDialer reaches the host on the local transport unless down.
type switchDialer struct {
	down  atomic.Bool
	dials atomic.Int32
}

func (d *switchDialer) Dial(ctx context.Context, t transport.Target, o transport.DialOptions) (transport.Conn, error) {
	d.dials.Add(1)
	if d.down.Load() {
		return nil, fmt.Errorf("%w: dial %s: connection refused", transport.ErrUnreachable, t.Name)
	}
	return &local.Conn{}, nil
}
