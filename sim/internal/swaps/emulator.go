package swaps

import (
	"context"

	"github.com/nixbook/nixbook/sim/hostinit"
)

// Host is what the emulation needs of the host it keeps the swap of.
type Host interface {
	// PID is the host's init, whose /proc/PID/root is the host's root; 0
	// while the host is down.
	PID() int
	// Stopping says the host is going down: no area may be added.
	Stopping() bool
	// Blocks lists the host's block devices that have a capacity.
	Blocks() []Block
	// OwnsBlock says whether a device number is one of Blocks (a node
	// made by hand for another device is not).
	OwnsBlock(rdev uint64) bool
	// Probe returns udev's properties of a device of the machine.
	Probe(ctx context.Context, dev string) map[string]string
	// SyncDevices brings the host's /dev up to date, as udev settles.
	SyncDevices(ctx context.Context) error
	Logf(format string, args ...any)
}

// Emulator is a host's swap list and its swapon and swapoff.
type Emulator struct {
	host Host
	swap hostSwaps
}

// New is the swap of a host, with no area on.
func New(h Host) *Emulator { return &Emulator{host: h} }

// Swapon runs util-linux's swapon with args in the host's directory dir.
func (h *Emulator) Swapon(ctx context.Context, dir string, args []string) hostinit.Reply {
	return h.cmdSwapon(ctx, dir, args)
}

// Swapoff runs util-linux's swapoff with args in the host's directory dir.
func (h *Emulator) Swapoff(ctx context.Context, dir string, args []string) hostinit.Reply {
	return h.cmdSwapoff(ctx, dir, args)
}

// Clear forgets every area and lets go of their devices: the host went
// down.
func (h *Emulator) Clear() { h.swap.clear() }
