package playbooks

import (
	"context"
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/modules"
)

// The specs below mimic the argument shapes of the built-in modules, so the
// loader can be tested without them.

// argv is a command given as a string or as a list of words.
type argv []string

func (a *argv) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*a = argv{n.Value}
		return nil
	case yaml.SequenceNode:
		return n.Decode((*[]string)(a))
	}
	return fmt.Errorf("line %d: want a command string or a list of arguments", n.Line)
}

type commandArgs struct {
	Cmd     argv   `yaml:"cmd" required:""`
	Creates string `yaml:"creates"`
	Removes string `yaml:"removes"`
	Chdir   string `yaml:"chdir"`
}

type shellArgs struct {
	Cmd     string `yaml:"cmd" required:""`
	Creates string `yaml:"creates"`
	Removes string `yaml:"removes"`
	Chdir   string `yaml:"chdir"`
}

type fileArgs struct {
	Dest  string `yaml:"dest" required:""`
	Mode  int    `yaml:"mode"`
	Owner string `yaml:"owner"`
}

type copyArgs struct {
	fileArgs `yaml:",inline"`
	Content  *string `yaml:"content"`
	Src      string  `yaml:"src"`
}

type templateArgs struct {
	Src      string `yaml:"src" required:""`
	fileArgs `yaml:",inline"`
}

type debugArgs struct {
	Msg any    `yaml:"msg"`
	Var string `yaml:"var"`
}

type assertArgs struct {
	That       []string `yaml:"that" required:""`
	FailMsg    string   `yaml:"fail_msg"`
	SuccessMsg string   `yaml:"success_msg"`
}

type failArgs struct {
	Msg string `yaml:"msg"`
}

type waitArgs struct {
	Timeout int `yaml:"timeout"`
	Delay   int `yaml:"delay"`
}

type rebootArgs struct {
	Timeout int `yaml:"timeout"`
}

type noop struct{}

func (noop) Check(context.Context, modules.ReadOnlyHost) (*modules.Plan, error) {
	return &modules.Plan{}, nil
}

func (noop) Apply(context.Context, modules.Host, *modules.Plan) (modules.Output, error) {
	return nil, nil
}

// newWith builds a New that decodes into A and runs validate on it.
func newWith[A any](validate func(*A) error) func(modules.Decoder) (modules.Module, error) {
	return func(d modules.Decoder) (modules.Module, error) {
		var a A
		if err := d.Decode(&a); err != nil {
			return nil, err
		}
		if validate != nil {
			if err := validate(&a); err != nil {
				return nil, err
			}
		}
		return noop{}, nil
	}
}

func testRegistry() *modules.Registry {
	return modules.NewRegistry(
		modules.Spec{Name: "command", Args: commandArgs{}, FreeForm: "cmd", New: newWith[commandArgs](nil)},
		modules.Spec{Name: "shell", Args: shellArgs{}, FreeForm: "cmd", New: newWith[shellArgs](nil)},
		modules.Spec{Name: "copy", Args: copyArgs{}, New: newWith(func(a *copyArgs) error {
			if (a.Content == nil) == (a.Src == "") {
				return errors.New("set exactly one of content and src")
			}
			return nil
		})},
		modules.Spec{Name: "template", Args: templateArgs{}, New: newWith[templateArgs](nil)},
		modules.Spec{Name: "debug", Args: debugArgs{}, FreeForm: "msg", New: newWith(func(a *debugArgs) error {
			if a.Msg != nil && a.Var != "" {
				return errors.New("msg and var are exclusive")
			}
			return nil
		})},
		modules.Spec{Name: "assert", Args: assertArgs{}, New: newWith[assertArgs](nil)},
		modules.Spec{Name: "fail", Args: failArgs{}, FreeForm: "msg", New: newWith[failArgs](nil)},
		modules.Spec{Name: "facts", Args: struct{}{}, New: newWith[struct{}](nil)},
		modules.Spec{Name: "wait_for_ssh", Args: &waitArgs{}, New: newWith[waitArgs](nil)},
		modules.Spec{Name: "reboot", Args: rebootArgs{}, New: newWith[rebootArgs](nil)},
		modules.Spec{Name: "ping"}, // takes no arguments and has no New
	)
}
