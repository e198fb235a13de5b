// Package assert checks conditions on the host's variables and facts and
// fails the host when one is false. It is read-only, so a dry run reports
// the same failures a real run would.
package assert

import (
	"context"
	"errors"
	"fmt"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
)

// Evaluator decides whether a Jinja expression, as written in `when:`, is
// true. The runner renders task arguments only, so conditions reach the
// module as written and it evaluates them itself.
type Evaluator interface {
	Truth(expr string, vars map[string]any) (bool, error)
}

// Args are the arguments of `assert`.
type Args struct {
	That       modkit.StringList `yaml:"that" required:"" doc:"conditions that must all be true, as Jinja expressions without braces (like when:)"`
	FailMsg    string            `yaml:"fail_msg" doc:"the message when a condition is false"`
	Msg        string            `yaml:"msg" doc:"another name for fail_msg"`
	SuccessMsg string            `yaml:"success_msg" default:"All assertions passed" doc:"the message when every condition holds"`
	Quiet      bool              `yaml:"quiet" doc:"say nothing when every condition holds"`
}

// Error reports the first false condition.
type Error struct {
	Assertion string // the condition, as written
	Msg       string // fail_msg, if any
}

func (e *Error) Error() string {
	if e.Msg != "" {
		return fmt.Sprintf("%s (assertion failed: %s)", e.Msg, e.Assertion)
	}
	return "assertion failed: " + e.Assertion
}

// NewSpec returns the `assert` module, evaluating conditions with e.
func NewSpec(e Evaluator) modules.Spec {
	return modules.Spec{
		Local:   true,
		Scope:   true, // its conditions are expressions over the host's variables
		Name:    "assert",
		Summary: "Fail the host unless every condition holds.",
		Args:    Args{},
		Example: `- name: Check the inventory against the hardware
  assert:
    that:
      - facts.firmware == "uefi"
      - facts.disks | length >= 2
      - ipv4_address is defined
    fail_msg: "{{ inventory_hostname }} does not fit the mirrored UEFI layout"
`,
		New: modkit.New(func(a Args) (modules.Module, error) {
			if e == nil {
				return nil, errors.New("assert: no evaluator")
			}
			if a.FailMsg != "" && a.Msg != "" {
				return nil, errors.New("fail_msg and msg are the same argument: give one")
			}
			if a.FailMsg == "" {
				a.FailMsg = a.Msg
			}
			for _, c := range a.That {
				if c == "" {
					return nil, errors.New("that: empty condition")
				}
			}
			return &module{args: a, eval: e}, nil
		}),
	}
}

type module struct {
	args Args
	eval Evaluator
}

// Check evaluates the conditions in order and fails on the first false one.
// The failing plan is returned beside the error so that `register` with
// ignore_errors can see which condition failed.
func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	vars := modkit.Vars(h)
	for _, c := range m.args.That {
		ok, err := m.eval.Truth(c, vars)
		if err != nil {
			return nil, fmt.Errorf("assertion %s: %w", c, err)
		}
		if !ok {
			e := &Error{Assertion: c, Msg: m.args.FailMsg}
			return &modules.Plan{
				Message: e.Error(),
				Output:  modules.Output{"msg": e.Error(), "assertion": c, "evaluated_to": false},
			}, e
		}
	}
	p := &modules.Plan{Output: modules.Output{"msg": m.args.SuccessMsg}}
	if !m.args.Quiet {
		p.Message = m.args.SuccessMsg
	}
	return p, nil
}

// Apply is never reached: the plan changes nothing.
func (m *module) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	return p.Output, nil
}
