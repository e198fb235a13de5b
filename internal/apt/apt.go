// Package apt installs Debian packages the tests and the simulated fleet need
// on a fresh machine.
package apt

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Install installs Debian packages, refreshing the package lists once if
// they do not know a package yet. It waits for a dpkg lock another install
// holds instead of failing.
func Install(ctx context.Context, pkgs ...string) error {
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
		return fmt.Errorf("apt-get install %s: %w: %s", strings.Join(pkgs, " "), err, out)
	}
	return nil
}
