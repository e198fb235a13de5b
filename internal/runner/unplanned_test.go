package runner_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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

// strayModule plans one command; its Apply runs it, reads a file and then
// runs a command its plan does not list.
type strayModule struct{ dir string }

func (m strayModule) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	c := modules.Change{Summary: "touch planned"}
	c.Cmd("touch", filepath.Join(m.dir, "planned"))
	return &modules.Plan{Changes: []modules.Change{c}}, nil
}

func (m strayModule) Apply(ctx context.Context, h modules.Host, p *modules.Plan) (modules.Output, error) {
	for _, argv := range [][]string{
		{"touch", filepath.Join(m.dir, "planned")},
		{"cat", "--", filepath.Join(m.dir, "planned")},
		{"touch", filepath.Join(m.dir, "stray")},
	} {
		if _, err := h.Run(ctx, transport.Cmd{Args: argv}); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func TestApplyIsBoundToItsPlan(t *testing.T) {
	tests := []struct {
		name       string
		strict     bool
		wantStatus runner.Status
		wantStray  bool
	}{
		{"reported", false, runner.StatusChanged, true},
		{"refused under strict", true, runner.StatusFailed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			reg := modules.NewRegistry(modules.Spec{
				Name: "stray", Summary: "test",
				New: func(modules.Decoder) (modules.Module, error) { return strayModule{dir: dir}, nil },
			})
			pb, err := playbooks.LoadBytes("play.yml", []byte("- hosts: all\n  gather_facts: false\n  tasks:\n    - name: strays\n      stray: {}\n"), "", reg)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var results []runner.Event
			logDir := filepath.Join(dir, "logs")
			r := &runner.Runner{Dialer: local.Dialer{}, Templates: tmpl.New(),
				Options: runner.Options{Strict: tt.strict, LogDir: logDir},
				Events: func(e runner.Event) {
					if e.Type == runner.EventResult {
						mu.Lock()
						results = append(results, e)
						mu.Unlock()
					}
				}}
			if _, err := r.Run(context.Background(), pb, localInventory(1), ""); err != nil {
				t.Fatal(err)
			}
			if len(results) != 1 {
				t.Fatalf("results = %+v, want one", results)
			}
			e := results[0]
			if e.Status != tt.wantStatus {
				t.Errorf("status = %s (%s), want %s", e.Status, e.Msg, tt.wantStatus)
			}
			stray := "touch " + filepath.Join(dir, "stray")
			if len(e.Unplanned) != 1 || e.Unplanned[0] != stray {
				t.Errorf("unplanned = %q, want [%q]: the read and the planned command are not unplanned", e.Unplanned, stray)
			}
			if tt.strict && !strings.Contains(e.Msg, "not in the task's plan") {
				t.Errorf("msg = %q, want it to say the command is not in the plan", e.Msg)
			}
			_, err = os.Stat(filepath.Join(dir, "stray"))
			if ran := err == nil; ran != tt.wantStray {
				t.Errorf("stray command ran: %v, want %v (stat: %v)", ran, tt.wantStray, err)
			}
			if !tt.wantStray && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("stat stray: %v", err)
			}
			log, err := os.ReadFile(filepath.Join(logDir, runner.LogFileName("l1")))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(log), stray+" (not in the task's plan") {
				t.Errorf("host log does not name the unplanned command:\n%s", log)
			}
		})
	}
}
