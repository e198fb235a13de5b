package runner_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/tmpl"
	"github.com/nixbook/nixbook/internal/transport"
	"github.com/nixbook/nixbook/internal/transport/local"
)

// measure runs a command printing 3 MB and fails with how much of it the
// module got back.
type measure struct{}

func (measure) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	return &modules.Plan{Changes: []modules.Change{{Summary: "print"}}}, nil
}

func (measure) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	res, err := h.Run(ctx, transport.Cmd{Args: []string{"seq", "1", "400000"}})
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("kept %d truncated=%v", len(res.Stdout), strings.Contains(string(res.Stdout), "output truncated"))
}

func TestTaskOutputIsBounded(t *testing.T) {
	reg := modules.NewRegistry(modules.Spec{Name: "measure", Summary: "test", Args: struct{}{},
		New: func(modules.Decoder) (modules.Module, error) { return measure{}, nil }})
	tests := []struct {
		name     string
		register string
		limit    int
	}{
		{name: "not registered", limit: runner.TaskOutputKeep},
		{name: "registered", register: "register: out", limit: runner.RegisteredOutputKeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pb, err := playbooks.LoadBytes("play.yml", []byte(`
- hosts: all
  gather_facts: false
  tasks:
    - name: print
      measure: {}
      `+tt.register+`
`), "", reg)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var msg string
			r := &runner.Runner{Dialer: local.Dialer{}, Templates: tmpl.New(), Options: runner.Options{LogDir: t.TempDir()},
				Events: func(e runner.Event) {
					if e.Type == runner.EventResult && e.Task == "print" {
						mu.Lock()
						msg = e.Msg
						mu.Unlock()
					}
				}}
			if _, err := r.Run(context.Background(), pb, localInventory(1), ""); err != nil {
				t.Fatal(err)
			}
			var kept int
			var truncated bool
			if _, err := fmt.Sscanf(msg, "kept %d truncated=%t", &kept, &truncated); err != nil {
				t.Fatalf("message %q: %v", msg, err)
			}
			if kept > tt.limit+200 || kept < tt.limit || !truncated {
				t.Errorf("kept %d bytes (truncated: %v), want %d and a marker", kept, truncated, tt.limit)
			}
		})
	}
}
