package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/nixosgen"
	"github.com/nixbook/nixbook/internal/transport"
)

// Where a flake's system is built.
const (
	BuildOnTarget = "target"
	BuildOnLocal  = "local"
)

// localBuild is a flake's system built on the controller and copied to
// the server.
type localBuild struct {
	nix    string              // the controller's nix
	folder []nixosgen.HostFile // the host's folder as the server has it
	out    string              // the system's store path, as evaluated
	copy   transport.Cmd       // nix-store --store ROOT --import, fed the closure
}

// toplevelAttr is the attribute of a flake's system that is built.
func toplevelAttr(ref string, f flakeRef) string {
	return flakeAttr(ref+"#"+f.name, "config.system.build.toplevel")
}

// serverFolder reads back the host's folder nixbook generated on the server:
// nixos_config's files under root/etc/nixos, or, once the install step
// placed them, in the flake's hosts/NAME. Nil when they are not there yet.
func (m *module) serverFolder(ctx context.Context, h modules.ReadOnlyHost, name string) ([]nixosgen.HostFile, error) {
	dest := m.flakeDest()
	var folder []nixosgen.HostFile
	for _, g := range generatedFiles {
		data, err := h.ReadFile(ctx, path.Join(dest, g.from))
		if absent(err) {
			data, err = h.ReadFile(ctx, path.Join(dest, HostsDir, name, g.to))
		}
		switch {
		case absent(err):
			return nil, nil
		case err != nil:
			return nil, err
		}
		folder = append(folder, nixosgen.HostFile{Name: g.to, Content: data})
	}
	if !strings.HasPrefix(string(folder[0].Content), generatedMarker) {
		return nil, nil // not nixbook's: the install step will say so
	}
	return folder, nil
}

// planLocalBuild evaluates, on the controller, the store path of the system
// the server's files make, so that the plan names the exact commands the
// server runs; the build itself comes in Apply.
func (m *module) planLocalBuild(ctx context.Context, h modules.ReadOnlyHost, f flakeRef) (*localBuild, error) {
	nix := m.controllerNix()
	if nix == "" {
		return nil, errors.New("build_on: local builds on the controller, which has no nix (install Nix, or set controller_nix)")
	}
	lb := &localBuild{nix: nix}
	ref := f.ref
	if f.dir != "" {
		folder, err := m.serverFolder(ctx, h, f.name)
		if err != nil {
			return nil, err
		}
		if folder == nil {
			return nil, modules.NotYet(fmt.Errorf("the system is built from the files nixos_config writes in %s, not there yet", m.flakeDest()))
		}
		lb.folder = folder
		dir, err := stageFlake(ctx, f, folder)
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		ref = "path:" + dir
	}
	out, err := runNix(ctx, nix, append(slices.Clone(nixFlags), "eval", "--raw", toplevelAttr(ref, f)+".outPath")...)
	if err != nil {
		return nil, fmt.Errorf("evaluate nixosConfigurations.%s of %s on the controller: %w", f.name, f.ref, err)
	}
	lb.out = strings.TrimSpace(out)
	if !strings.HasPrefix(lb.out, "/nix/store/") {
		return nil, fmt.Errorf("evaluate nixosConfigurations.%s of %s on the controller: %q is no store path", f.name, f.ref, lb.out)
	}
	return lb, nil
}

// runNix runs a Nix program on the controller and returns what it printed.
func runNix(ctx context.Context, prog string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("%s %s: %w: %s", filepath.Base(prog), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// nixStore is the controller's nix-store: beside its nix, else on PATH.
func nixStore(nix string) string {
	beside := filepath.Join(filepath.Dir(nix), "nix-store")
	if _, err := os.Stat(beside); err == nil {
		return beside
	}
	if p, err := exec.LookPath("nix-store"); err == nil {
		return p
	}
	return beside
}

// buildLocally builds the flake's system on the controller and copies its
// closure into the server's store. Nix's store is what makes a fleet of
// identical servers build once: a system already built is not built again,
// and builds of one derivation wait for each other.
func (m *module) buildLocally(ctx context.Context, h modules.Host, sp *systemPlan) error {
	f, lb := *sp.flake, sp.local
	ref := f.ref
	if f.dir != "" {
		dir, err := stageFlake(ctx, f, lb.folder)
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		ref = "path:" + dir
	}
	if err := evalLockout(ctx, lb.nix, ref, f); err != nil {
		return fmt.Errorf("%w; nothing was installed", err)
	}
	h.Log("building nixosConfigurations.%s of %s on the controller with %s", f.name, f.ref, lb.nix)
	out, err := runNix(ctx, lb.nix, append(slices.Clone(nixFlags), "build", "--no-link", "--print-out-paths", toplevelAttr(ref, f))...)
	if err != nil {
		return fmt.Errorf("build nixosConfigurations.%s of %s on the controller: %w", f.name, f.ref, err)
	}
	if built := strings.TrimSpace(out); built != lb.out {
		return fmt.Errorf("the controller built %s, and the plan was to install %s: the flake changed meanwhile; run again", built, lb.out)
	}
	store := nixStore(lb.nix)
	closure, err := runNix(ctx, store, "--query", "--requisites", lb.out)
	if err != nil {
		return fmt.Errorf("the closure of %s: %w", lb.out, err)
	}
	paths := strings.Fields(closure)
	h.Log("copying %d store paths of %s to %s", len(paths), lb.out, m.args.Root)
	export := exec.CommandContext(ctx, store, append([]string{"--export"}, paths...)...)
	var stderr bytes.Buffer
	export.Stderr = &stderr
	stream, err := export.StdoutPipe()
	if err != nil {
		return err
	}
	if err := export.Start(); err != nil {
		return fmt.Errorf("nix-store --export: %w", err)
	}
	cmd := lb.copy
	cmd.Stdin = stream
	res, runErr := h.Run(ctx, cmd)
	if runErr != nil {
		_ = export.Process.Kill()
	}
	exportErr := export.Wait()
	switch {
	case runErr != nil:
		return fmt.Errorf("%s: %w: %s", lb.copy.Line(), runErr, strings.TrimSpace(string(res.Stderr)))
	case exportErr != nil:
		return fmt.Errorf("nix-store --export on the controller: %w: %s", exportErr, strings.TrimSpace(stderr.String()))
	}
	return nil
}
