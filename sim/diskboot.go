package sim

import (
	"context"
	"errors"
)

// prepareDisk boots what is installed on the host's disks.
func (h *Host) prepareDisk(ctx context.Context, b *boot) error {
	return errors.New("disk mode is not available yet")
}
