// Package template renders a Jinja template from beside the playbook with the
// host's variables and facts, and writes the result as the copy module does.
package template

import (
	"context"
	"errors"
	"fmt"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/fileplan"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
)

// Renderer renders template text with variables. The runner renders task
// arguments only, so the module renders the file's content itself.
type Renderer interface {
	Render(src string, vars map[string]any) (string, error)
}

// Args are the arguments of `template`.
type Args struct {
	Src           string `yaml:"src" required:"" doc:"a Jinja template on the controller; a relative path is looked up in the role's templates/ and the role, then in templates/ beside the playbook, then beside the playbook"`
	fileplan.File `yaml:",inline"`
}

// NewSpec returns the `template` module, rendering with r.
func NewSpec(r Renderer) modules.Spec {
	return modules.Spec{
		Scope:   true, // it renders the host's variables
		Name:    "template",
		Summary: "Render a Jinja template with the host's variables and facts and write it to the host.",
		Args:    Args{},
		Example: `- name: Write the NixOS network configuration
  template:
    src: network.nix.j2
    dest: /mnt/etc/nixos/network.nix
    mode: "0644"
`,
		New: modkit.New(func(a Args) (modules.Module, error) {
			if r == nil {
				return nil, errors.New("template: no renderer")
			}
			return &module{args: a, render: r}, nil
		}),
	}
}

type module struct {
	args   Args
	render Renderer
}

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	vars := modkit.Vars(h)
	src, err := fileplan.ReadController(vars, m.args.Src, "templates")
	if err != nil {
		return nil, err
	}
	text, err := m.render.Render(string(src), vars)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", m.args.Src, err)
	}
	return fileplan.Plan(ctx, h, m.args.File, []byte(text))
}

func (m *module) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	return fileplan.Apply(ctx, h, p)
}
