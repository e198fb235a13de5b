package partition

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/transport"
)

// scriptedHost answers Run with exit codes from a script, in order; the
// last one repeats.
type scriptedHost struct {
	modules.Host
	codes []int
	runs  int
}

func (h *scriptedHost) Name() string                   { return "ks1" }
func (h *scriptedHost) Log(format string, args ...any) {}
func (h *scriptedHost) Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	code := h.codes[min(h.runs, len(h.codes)-1)]
	h.runs++
	if code == 0 {
		return transport.Result{}, nil
	}
	res := transport.Result{ExitCode: code, Stderr: []byte("no")}
	return res, transport.NewExitError(cmd, res)
}

func TestRunStep(t *testing.T) {
	node := transport.Cmd{Args: []string{"test", "-b", "/dev/sda1"}}
	settle := transport.Cmd{Args: []string{"udevadm", "settle", "--timeout=10"}}
	tests := []struct {
		name     string
		step     step
		codes    []int
		wantRuns int
		wantErr  string
	}{
		{name: "plain success", step: step{cmd: node}, codes: []int{0}, wantRuns: 1},
		{name: "plain failure", step: step{cmd: node}, codes: []int{1}, wantRuns: 1, wantErr: "command exited 1"},
		{name: "node appears", step: step{cmd: node, wait: true}, codes: []int{1, 1, 0}, wantRuns: 3},
		{name: "node never appears", step: step{cmd: node, wait: true}, codes: []int{1}, wantErr: "/dev/sda1 did not appear within 300ms of partitioning"},
		{name: "missing udevadm", step: step{cmd: settle, optional: true}, codes: []int{127}, wantRuns: 1},
		{name: "failing udevadm", step: step{cmd: settle, optional: true}, codes: []int{1}, wantRuns: 1, wantErr: "command exited 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &scriptedHost{codes: tt.codes}
			err := runStep(context.Background(), h, tt.step, 300*time.Millisecond)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if tt.wantRuns > 0 && h.runs != tt.wantRuns {
				t.Errorf("%d runs, want %d", h.runs, tt.wantRuns)
			}
		})
	}
}

func TestApplyRefusesForeignPlans(t *testing.T) {
	m := &module{}
	if _, err := m.Apply(context.Background(), &scriptedHost{codes: []int{0}}, &modules.Plan{Changes: []modules.Change{{Summary: "x"}}}); err == nil {
		t.Error("apply ran a plan it did not make")
	}
}
