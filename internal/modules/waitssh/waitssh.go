// Package waitssh is the `wait_for_ssh` module: it reconnects to the host
// until SSH works end to end (a command runs), for hosts that were rebooted
// or reinstalled by other means. Wait is the loop the reboot module shares.
package waitssh

import (
	"context"
	"errors"
	"fmt"

	"github.com/nixbook/nixbook/internal/clock"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/boot"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
	"github.com/nixbook/nixbook/internal/transport"
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
	New: modkit.New(func(a Args) (modules.Module, error) {
		if a.Timeout <= 0 {
			return nil, errors.New("timeout must be positive")
		}
		return &module{args: a}, nil
	}),
}

type module struct {
	args  Args
	clock clock.Clock // zero: real time
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
	cmd, err := modkit.PlanData[transport.Cmd](p)
	if err != nil {
		return nil, err
	}
	start := m.clock.Now()
	if err := m.clock.Sleep(ctx, m.args.Delay.D()); err != nil {
		return nil, err
	}
	err = boot.Reconnect(ctx, h, boot.Options{
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
