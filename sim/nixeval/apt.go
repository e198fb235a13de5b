package nixeval

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/nixbook/nixbook/internal/apt"
)

// EnsureNix installs Debian's nix-bin when nix-instantiate is missing and
// the process runs as root, so that a fresh machine can evaluate.
func EnsureNix(ctx context.Context) error {
	if _, err := exec.LookPath("nix-instantiate"); err == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return ErrNoNix
	}
	if err := apt.Install(ctx, "nix-bin"); err != nil {
		return fmt.Errorf("install nix-bin: %w", err)
	}
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		return ErrNoNix
	}
	return nil
}
