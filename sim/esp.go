package sim

import (
	"context"

	"github.com/nixbook/nixbook/sim/ovhapi"
)

// efiBoot is what the firmware finds when it boots the disks through the
// loader path (OVH's efiBootloaderPath): nil when the loader is on an EFI
// system partition, else why it stops in the UEFI shell.
func (h *Host) efiBoot(ctx context.Context, path string) error {
	return h.diskBoot().EFI(ctx, path)
}

// efiBootloaderPath is the loader path the API gives the server now; OVH's
// Debian loader when the fleet has no API.
func (h *Host) efiBootloaderPath() string {
	if h.f.emu != nil {
		if path, ok := h.f.emu.LoaderPath(h.service); ok {
			return path
		}
	}
	return ovhapi.DebianEFILoader
}
