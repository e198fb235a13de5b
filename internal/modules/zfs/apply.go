package zfs

import (
	"context"
	"errors"
	"fmt"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
	"github.com/nixbook/nixbook/internal/transport"
)

func (m *module) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	steps, err := modkit.PlanData[[]step](p)
	if err != nil {
		return nil, err
	}
	if len(steps) != len(p.Changes) {
		return nil, errors.New("plan data does not match its changes")
	}
	for i, s := range steps {
		summary := p.Changes[i].Summary
		if s.skipIfDataset != "" {
			_, err := h.Run(ctx, transport.Cmd{Args: []string{"zfs", "list", "-H", "-o", "name", s.skipIfDataset}})
			if err == nil {
				h.Log("%s exists in the imported pool: not created", s.skipIfDataset)
				continue
			}
			if _, ran := exitCode(err); !ran {
				return nil, fmt.Errorf("%s: %w", summary, err)
			}
		}
		for _, cmd := range s.cmds {
			if _, err := h.Run(ctx, cmd); err != nil {
				return nil, fmt.Errorf("%s: %w", summary, err)
			}
		}
	}
	return p.Output, nil
}
