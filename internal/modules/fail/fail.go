// Package fail stops the host with a message.
package fail

import (
	"context"
	"errors"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
)

// Args are the arguments of `fail`.
type Args struct {
	Msg string `yaml:"msg" default:"Failed as requested from task" doc:"the message the host fails with"`
}

// Spec is the `fail` module.
var Spec = modules.Spec{
	Local:    true,
	Name:     "fail",
	Summary:  "Fail the host with a message (usually under `when:`).",
	Args:     Args{},
	FreeForm: "msg",
	Example: `- name: Refuse hosts without a disk to install on
  fail:
    msg: "{{ inventory_hostname }} has no disk"
  when: facts.disks | length == 0
`,
	New: modkit.New(func(a Args) (modules.Module, error) {
		return &module{msg: a.Msg}, nil
	}),
}

type module struct{ msg string }

// Check fails: failing is all the module does, in a dry run too.
func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	return nil, errors.New(m.msg)
}

// Apply is never reached: Check always fails.
func (m *module) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	return nil, errors.New(m.msg)
}
