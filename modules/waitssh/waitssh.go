// Package waitssh is the `wait_for_ssh` module: it reconnects to the host
// until SSH works end to end (a command runs), for hosts that were rebooted
// or reinstalled by other means. Wait is the loop the reboot module shares.
package waitssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/hostkeys"
	"github.com/nixbook/nixbook/modules"
	"github.com/nixbook/nixbook/modules/internal/modkit"
	"github.com/nixbook/nixbook/transport"
)

// Args are the arguments of `wait_for_ssh`.
type Args struct {
	Timeout   modkit.Duration `yaml:"timeout" default:"10m" doc:"how long to keep trying (a duration such as 10m, or seconds)"`
	Delay     modkit.Duration `yaml:"delay" default:"0s" doc:"how long to wait before the first attempt"`
	Sleep     modkit.Duration `yaml:"sleep" default:"1s" doc:"pause between attempts"`
	NewSystem bool            `yaml:"new_system" doc:"the host has just booted a new system (rescue, installer, fresh install): accept and record its new host key instead of refusing it"`
}

// Spec is the `wait_for_ssh` module.
var Spec = modules.Spec{
	Name:    "wait_for_ssh",
	Summary: "Reconnect until the host answers over SSH and runs a command.",
	Args:    Args{},
	Example: `- name: Wait for the rescue system
  wait_for_ssh:
    timeout: 15m
    new_system: true
`,
	New: func(d modules.Decoder) (modules.Module, error) {
		var a Args
		if err := modkit.Decode(d, &a); err != nil {
			return nil, err
		}
		if a.Timeout <= 0 {
			return nil, errors.New("timeout must be positive")
		}
		return &module{args: a}, nil
	},
}

type module struct {
	args  Args
	clock Clock // zero: real time
}

// readyArgv is the command that proves a connection works end to end.
var readyArgv = []string{"true"}

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	c := modules.Change{Summary: fmt.Sprintf("wait up to %s for SSH", m.args.Timeout)}
	if m.args.NewSystem {
		c.Summary += ", accepting a new host key"
	}
	cmd := c.Cmd(readyArgv...)
	return &modules.Plan{Changes: []modules.Change{c}, Data: cmd}, nil
}

func (m *module) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	cmd, ok := p.Data.(transport.Cmd)
	if !ok {
		return nil, errors.New("wait_for_ssh: apply called with a plan it did not make")
	}
	start := m.clock.Now()
	if err := m.clock.Sleep(ctx, m.args.Delay.D()); err != nil {
		return nil, err
	}
	err := Wait(ctx, h, Options{
		Timeout:   m.args.Timeout.D(),
		Sleep:     m.args.Sleep.D(),
		NewSystem: m.args.NewSystem,
		Clock:     m.clock,
	}, func(ctx context.Context) (bool, error) {
		_, err := h.Run(ctx, cmd)
		return err == nil, err
	})
	out := modules.Output{"elapsed": int(m.clock.Now().Sub(start).Seconds())}
	return out, err
}

// Options tune Wait.
type Options struct {
	Timeout time.Duration // overall bound
	Sleep   time.Duration // first pause between attempts
	// MaxSleep caps the pause, which doubles after each failed attempt up to
	// it; at or below Sleep the pause stays fixed.
	MaxSleep  time.Duration
	NewSystem bool
	// StaleKeys are the keys of the system the host is leaving, replaced by
	// a key pinned in advance: a host still offering one of them is not
	// there yet and is retried, while any other changed key ends the wait.
	StaleKeys []gossh.PublicKey
	Clock     Clock
}

// Clock is the time Wait sees; the zero value is real time, and tests set
// the functions.
type Clock struct {
	NowFn   func() time.Time
	SleepFn func(ctx context.Context, d time.Duration) error
}

// Now is the current time.
func (c Clock) Now() time.Time {
	if c.NowFn != nil {
		return c.NowFn()
	}
	return time.Now()
}

// Sleep pauses for d or until ctx ends.
func (c Clock) Sleep(ctx context.Context, d time.Duration) error {
	if c.SleepFn != nil {
		return c.SleepFn(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// stale says whether offered is one of keys.
func stale(keys []gossh.PublicKey, offered gossh.PublicKey) bool {
	for _, k := range keys {
		if offered != nil && bytes.Equal(k.Marshal(), offered.Marshal()) {
			return true
		}
	}
	return false
}

// Wait reconnects to h and asks ready, again and again, until ready says
// yes or the timeout passes. A changed host key ends the wait at once (unless
// NewSystem accepts it): only a person can decide to trust it. Every other
// failure, refused connections and failing ready checks alike, is retried.
func Wait(ctx context.Context, h modules.Host, o Options, ready func(ctx context.Context) (bool, error)) error {
	start := o.Clock.Now()
	deadline := start.Add(o.Timeout)
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	pause := o.Sleep
	if pause <= 0 {
		pause = 100 * time.Millisecond // no busy loop against a host
	}
	dial := transport.DialOptions{NewSystem: o.NewSystem, Log: func(s string) { h.Log("%s", s) }}
	var last error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := h.Reconnect(wctx, dial)
		var changed *hostkeys.ChangedError
		switch {
		case errors.As(err, &changed) && !stale(o.StaleKeys, changed.Offered):
			return err
		case err != nil:
			last = err
		default:
			ok, rerr := ready(wctx)
			if ok && rerr == nil {
				h.Log("ready after %d attempts in %s", attempt, o.Clock.Now().Sub(start).Round(time.Millisecond))
				return nil
			}
			last = rerr
			if last == nil {
				last = errors.New("not ready yet")
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if wctx.Err() != nil || !o.Clock.Now().Add(pause).Before(deadline) {
			return fmt.Errorf("gave up after %s and %d attempts: %w", o.Timeout, attempt, last)
		}
		h.Log("attempt %d: %v; next in %s", attempt, last, pause)
		if err := o.Clock.Sleep(wctx, pause); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("gave up after %s and %d attempts: %w", o.Timeout, attempt, last)
		}
		if o.MaxSleep > pause {
			pause = min(pause*2, o.MaxSleep)
		}
	}
}
