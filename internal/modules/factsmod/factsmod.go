// Package factsmod is the `facts` module: it publishes the host's gathered
// facts for `register`. Gathering is the runner's job (at play start, and
// after a reboot).
package factsmod

import (
	"context"
	"fmt"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
)

// Args is empty: the module takes no arguments.
type Args struct{}

// Spec is the `facts` module.
var Spec = modules.Spec{
	Name:    "facts",
	Summary: "Publish the host's gathered facts (hostname, OS, disks, interfaces...) for register.",
	Args:    Args{},
	Example: `- name: Keep the facts for later tasks
  facts:
  register: gathered
`,
	New: modkit.New(func(a Args) (modules.Module, error) {
		return module{}, nil
	}),
}

type module struct{}

func (module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	g, err := modkit.Generic(h.Facts())
	if err != nil {
		return nil, fmt.Errorf("facts: %w", err)
	}
	out, _ := g.(map[string]any)
	return &modules.Plan{Output: modules.Output(out)}, nil
}

// Apply is never reached: the plan changes nothing.
func (module) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	return p.Output, nil
}
