package install

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/nixosgen"
)

// NoControllerNix, as controller_nix, leaves a flake's evaluation to the
// server, just before nixos-install.
const NoControllerNix = "none"

// controllerNix is the Nix program that evaluates a flake on the
// controller, "" when there is none.
func (m *module) controllerNix() string {
	switch m.args.ControllerNix {
	case NoControllerNix:
		return ""
	case "":
		p, err := exec.LookPath("nix")
		if err != nil {
			return ""
		}
		return p
	}
	return m.args.ControllerNix
}

// preflightFlake evaluates the flake's system on the controller, before
// anything on the server changes (and so in --check too), and refuses one
// that would lock the user out. A local flake is evaluated as the install
// step will place it: what git tracks, with the host's folder nixbook writes
// (hosts/<name>) rendered from the host's facts and inventory as `nixbook
// generate` renders it. Without Nix on the controller, the server evaluates
// it just before nixos-install.
func (m *module) preflightFlake(ctx context.Context, h modules.ReadOnlyHost) error {
	nix := m.controllerNix()
	if nix == "" {
		h.Log("no nix on the controller (controller_nix): the flake's system is evaluated on the server, just before nixos-install")
		return nil
	}
	f, err := parseFlake(m.args.Flake, h.Name())
	if err != nil {
		return err
	}
	ref := f.ref
	if f.dir != "" {
		folder, err := hostFolder(ctx, h, m.args.HostVars)
		if err != nil {
			// The flake's own copy of the folder, if it has one, stands in.
			h.Log("the host's folder cannot be rendered on the controller (%v): the flake's own %s/%s is evaluated", err, HostsDir, f.name)
		}
		scratch, err := stageFlake(ctx, f, folder)
		if err != nil {
			return err
		}
		defer os.RemoveAll(scratch)
		ref = "path:" + scratch
	}
	if err := evalLockout(ctx, nix, ref, f); err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	h.Log("nixosConfigurations.%s of %s, evaluated on the controller with %s, keeps sshd, root's key, the network and a boot loader", f.name, f.ref, nix)
	return nil
}

// nixFlags turn on what evaluating a flake takes in every Nix since 2.4.
var nixFlags = []string{"--extra-experimental-features", "nix-command flakes"}

// evalLockout evaluates the system of ref (a flake the controller's nix
// reads) and refuses one that would lock the user out.
func evalLockout(ctx context.Context, nix, ref string, f flakeRef) error {
	cmd := exec.CommandContext(ctx, nix, append(slices.Clone(nixFlags), "eval", "--json",
		"--apply", lockoutExpr, flakeAttr(ref+"#"+f.name, "config"))...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if f.dir != "" {
			msg = strings.ReplaceAll(msg, strings.TrimPrefix(ref, "path:"), f.dir)
		}
		return fmt.Errorf("refusing to install nixosConfigurations.%s of %s: %s on the controller cannot evaluate it (controller_nix: none leaves that to the server): %w: %s",
			f.name, f.ref, nix, err, msg)
	}
	var l lockout
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &l); err != nil {
		return fmt.Errorf("evaluate nixosConfigurations.%s of %s on the controller: read %s's output: %w", f.name, f.ref, nix, err)
	}
	if why := l.lockedOut(); len(why) > 0 {
		return fmt.Errorf("refusing to install nixosConfigurations.%s of %s: the server would lock you out: %s",
			f.name, f.ref, strings.Join(why, "; "))
	}
	return nil
}

// stageFlake lays out, in a new directory on the controller, what the
// install step places on the server: the files git tracks, with the host's
// folder (hosts/NAME) replaced by folder when there is one.
func stageFlake(ctx context.Context, f flakeRef, folder []nixosgen.HostFile) (string, error) {
	dir, err := os.MkdirTemp("", "nixbook-flake-")
	if err != nil {
		return "", fmt.Errorf("stage %s on the controller: %w", f, err)
	}
	if err := stageFiles(ctx, f, dir, folder); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func stageFiles(ctx context.Context, f flakeRef, dir string, folder []nixosgen.HostFile) error {
	files, err := trackedFiles(ctx, f.dir)
	if err != nil {
		return err
	}
	for _, file := range files {
		dst := filepath.Join(dir, filepath.FromSlash(file.rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if file.link != "" {
			if err := os.Symlink(file.link, dst); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(file.rel)))
		if err != nil {
			return fmt.Errorf("flake: %w", err)
		}
		if err := os.WriteFile(dst, data, file.mode); err != nil {
			return err
		}
	}
	if len(folder) == 0 {
		return nil
	}
	// As on the server, nixbook's files replace the flake's copies of them.
	hostDir := filepath.Join(dir, HostsDir, f.name)
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		return err
	}
	for _, hf := range folder {
		if err := os.WriteFile(filepath.Join(hostDir, hf.Name), hf.Content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// hostFolder renders the host's folder as `nixbook generate` does, from the
// inventory variables the stock playbooks pass nixos_config.
func hostFolder(ctx context.Context, h modules.ReadOnlyHost, hv HostVars) ([]nixosgen.HostFile, error) {
	plain := func(v any) bool {
		s, ok := v.(string)
		return v != nil && !(ok && strings.Contains(s, "{{"))
	}
	args := map[string]any{}
	for arg, v := range hv.Args() {
		if plain(v) {
			args[arg] = v
		}
	}
	layout, _ := hv.FSLayout.(string)
	if !plain(layout) {
		layout = ""
	}
	files, _, err := nixosgen.GenerateHost(ctx, nixosgen.Host{Name: h.Name(), Facts: h.Facts(), Vars: args, Layout: layout})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, errors.New("nothing rendered")
	}
	return files, nil
}
