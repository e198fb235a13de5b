package sim

import (
	"context"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

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
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	var out []swaps.Block
	for name, e := range s.h.dev {
		if e.link == "" && e.major != 0 && e.blocks > 0 && !strings.Contains(name, "/") {
			out = append(out, swaps.Block{Name: name, Major: e.major, Minor: e.minor})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s swapHost) OwnsBlock(rdev uint64) bool {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	for _, e := range s.h.dev {
		if e.link == "" && e.major != 0 && unix.Mkdev(e.major, e.minor) == rdev {
			return true
		}
	}
	return false
}

func (s swapHost) Probe(ctx context.Context, dev string) map[string]string { return probe(ctx, dev) }

func (s swapHost) SyncDevices(ctx context.Context) error { return s.h.syncDev(ctx, false) }

func (s swapHost) Logf(format string, args ...any) {
	s.h.f.logf("%s: "+format, append([]any{s.h.spec.Name}, args...)...)
}
