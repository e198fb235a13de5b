package nixosgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/nixbook/nixbook/internal/nixenv"
)

// ErrNoNix means the controller has no nix-instantiate to parse with.
var ErrNoNix = errors.New("nix-instantiate is not installed on the controller")

// ParseCheck parses each rendered file with the controller's
// nix-instantiate, so a syntax error (often in `extra`) fails the check
// before anything is written. Files sit in a scratch copy of the target's
// directory; messages name them as shownDir/name. ErrNoNix when
// nix-instantiate is missing.
func ParseCheck(ctx context.Context, files []HostFile, shownDir string) error {
	nix, err := exec.LookPath("nix-instantiate")
	if err != nil {
		return ErrNoNix
	}
	work, err := os.MkdirTemp("", "nixbook-parse-")
	if err != nil {
		return fmt.Errorf("parse check: %w", err)
	}
	defer os.RemoveAll(work)
	dir := filepath.Join(work, "etc", "nixos")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("parse check: %w", err)
	}
	var errs []error
	for _, f := range files {
		file := filepath.Join(dir, f.Name)
		if err := os.WriteFile(file, f.Content, 0o644); err != nil {
			return fmt.Errorf("parse check: %w", err)
		}
		cmd := exec.CommandContext(ctx, nix, "--parse", file)
		// No daemon, store or user settings: parsing needs none of them.
		cmd.Env = nixenv.Scratch(work)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("parse check: %w", ctx.Err())
			}
			msg := strings.TrimSpace(strings.ReplaceAll(stderr.String(), dir, shownDir))
			if msg == "" {
				msg = err.Error()
			}
			errs = append(errs, fmt.Errorf("nix-instantiate --parse %s/%s (on the controller) refuses it:\n%s", shownDir, f.Name, msg))
		}
	}
	return errors.Join(errs...)
}
