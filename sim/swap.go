package sim

import (
	"context"

	"github.com/nixbook/nixbook/sim/internal/devtree"
	"github.com/nixbook/nixbook/sim/internal/swaps"
)

// swapHost is what a host's swap emulation sees of it (swaps.Host).
type swapHost struct{ h *Host }

func (s swapHost) PID() int { return s.h.pid() }

func (s swapHost) Stopping() bool {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.h.stopping || s.h.proc == nil
}

func (s swapHost) Blocks() []swaps.Block {
	var out []swaps.Block
	for _, n := range s.h.devs.Blocks() {
		out = append(out, swaps.Block{Name: n.Name, Major: n.Major, Minor: n.Minor})
	}
	return out
}

func (s swapHost) OwnsBlock(rdev uint64) bool { return s.h.devs.OwnsBlock(rdev) }

func (s swapHost) Probe(ctx context.Context, dev string) map[string]string {
	return devtree.Probe(ctx, dev)
}

func (s swapHost) SyncDevices(ctx context.Context) error { return s.h.devs.Sync(ctx, false) }

func (s swapHost) Logf(format string, args ...any) {
	s.h.f.logf("%s: "+format, append([]any{s.h.spec.Name}, args...)...)
}
