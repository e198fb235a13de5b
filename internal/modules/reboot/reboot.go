// Package reboot reboots the host and waits until it is back: a new boot id
// proves the reboot happened, a test command proves the system is usable,
// and facts are gathered again for the tasks after it.
package reboot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nixbook/nixbook/internal/clock"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/boot"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
	"github.com/nixbook/nixbook/internal/transport"
)

// Args are the arguments of `reboot`.
type Args struct {
	Timeout         modkit.Duration `yaml:"timeout" default:"10m" doc:"how long the host may take to come back and pass test_command"`
	PreRebootDelay  modkit.Duration `yaml:"pre_reboot_delay" default:"0s" doc:"wait this long before rebooting"`
	PostRebootDelay modkit.Duration `yaml:"post_reboot_delay" default:"0s" doc:"wait this long after the reboot command before trying to reconnect"`
	NewSystem       bool            `yaml:"new_system" doc:"the host boots into a new system (rescue, installer, fresh install): accept and record its new host key"`
	TestCommand     modkit.Argv     `yaml:"test_command" default:"whoami" doc:"a command that must succeed once the host is back"`
	RebootCommand   modkit.Argv     `yaml:"reboot_command" default:"sh -c 'sleep 1; reboot'" doc:"the command that reboots; it is started detached (nohup) so that the SSH session returns before the connection drops"`
}

// Spec is the `reboot` module.
var Spec = modules.Spec{
	Name:    "reboot",
	Summary: "Reboot the host and wait until it is back with a new boot id.",
	Args:    Args{},
	Example: `- name: Boot the installed system
  reboot:
    timeout: 15m
    new_system: true
    test_command: [nixos-version]
`,
	New: modkit.New(func(a Args) (modules.Module, error) {
		if a.Timeout <= 0 {
			return nil, errors.New("timeout must be positive")
		}
		if len(a.TestCommand) == 0 || len(a.RebootCommand) == 0 {
			return nil, errors.New("test_command and reboot_command must not be empty")
		}
		return &module{args: a}, nil
	}),
}

type module struct {
	args  Args
	clock clock.Clock // zero: real time
}

type plan struct {
	bootID string
	reboot transport.Cmd
	test   transport.Cmd
}

// detach wraps argv so that it runs on after the session that started it has
// gone: the reboot tears the connection down, and the command must not wait
// for it or be killed with it.
func detach(argv []string) []string {
	return append([]string{"sh", "-c", `nohup "$@" </dev/null >/dev/null 2>&1 &`, "sh"}, argv...)
}

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	id, err := h.ReadFile(ctx, boot.IDPath)
	if err != nil {
		return nil, fmt.Errorf("read boot id: %w", err)
	}
	c := modules.Change{Summary: fmt.Sprintf("reboot and wait up to %s for a new boot", m.args.Timeout)}
	if m.args.NewSystem {
		c.Summary += ", accepting a new host key"
	}
	p := &plan{
		bootID: strings.TrimSpace(string(id)),
		reboot: c.Cmd(detach(m.args.RebootCommand)...),
		test:   c.Cmd(m.args.TestCommand...),
	}
	return &modules.Plan{Changes: []modules.Change{c}, Reboots: true, Data: p}, nil
}

func (m *module) Apply(ctx context.Context, h modules.Host, pl *modules.Plan) (modules.Output, error) {
	p, err := modkit.PlanData[*plan](pl)
	if err != nil {
		return nil, err
	}
	begin := m.clock.Now()
	if err := m.clock.Sleep(ctx, m.args.PreRebootDelay.D()); err != nil {
		return nil, err
	}
	h.Log("rebooting from boot %s", p.bootID)
	if _, err := h.Run(ctx, p.reboot); err != nil {
		// The connection may drop before the command returns (no exit
		// status at all): that is the reboot under way, not a failure.
		var exit *transport.ExitError
		if errors.As(err, &exit) && exit.ExitCode >= 0 || ctx.Err() != nil {
			return nil, fmt.Errorf("reboot command: %w", err)
		}
		h.Log("connection lost while starting the reboot, as expected: %v", err)
	}
	if err := m.clock.Sleep(ctx, m.args.PostRebootDelay.D()); err != nil {
		return nil, err
	}
	newID, err := boot.WaitNew(ctx, h, boot.Options{
		Timeout:   m.args.Timeout.D(),
		Sleep:     time.Second,
		MaxSleep:  10 * time.Second,
		NewSystem: m.args.NewSystem,
		Clock:     m.clock,
	}, p.bootID, func(ctx context.Context) (bool, error) {
		if _, err := h.Run(ctx, p.test); err != nil {
			return false, fmt.Errorf("test command: %w", err)
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("wait for the reboot: %w", err)
	}
	h.Log("back on boot %s", newID)
	if err := h.RefreshFacts(ctx); err != nil {
		return nil, fmt.Errorf("gather facts after the reboot: %w", err)
	}
	return modules.Output{"elapsed": int(m.clock.Now().Sub(begin).Seconds()), "rebooted": true}, nil
}
