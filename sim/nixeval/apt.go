package nixeval

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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
	if err := aptInstall(ctx, "nix-bin"); err != nil {
		return fmt.Errorf("install nix-bin: %w", err)
	}
	if _, err := exec.LookPath("nix-instantiate"); err != nil {
		return ErrNoNix
	}
	return nil
}

// aptInstall installs Debian packages, refreshing the package lists once
// if they do not know a package yet.
func aptInstall(ctx context.Context, pkgs ...string) error {
	install := func() ([]byte, error) {
		args := append([]string{"-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q", "--no-install-recommends"}, pkgs...)
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := install(); err == nil {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-q").CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %w: %s", err, out)
	}
	if out, err := install(); err != nil {
		return fmt.Errorf("apt-get install: %w: %s", err, out)
	}
	return nil
}
