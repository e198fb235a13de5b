package sim

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nixbook/nixbook/sim/hostinit"
	"github.com/nixbook/nixbook/sim/payload"
)

// PayloadPort is where the fleet serves the payload on its bridge (another
// free port when taken).
const PayloadPort = 8080

// buildPayload builds (or finds in its cache) the NixOS ISO and kexec
// tarball the hosts install from.
func buildPayload(ctx context.Context, cfg Config) (*payload.Payload, error) {
	dir := cfg.PayloadCache
	if dir == "" {
		var err error
		if dir, err = payload.DefaultDir(); err != nil {
			return nil, fmt.Errorf("payload cache: %w", err)
		}
	}
	return payload.Build(ctx, payload.Options{Dir: dir, Version: cfg.NixOSVersion})
}

// servePayload serves the payload on the bridge, where the hosts download
// it, and adds its URLs and checksums to the inventory.
func (f *Fleet) servePayload(ctx context.Context, built *payload.Payload) error {
	pad, err := f.cfg.Overrides.padding()
	if err != nil {
		return err
	}
	p := *built
	if p.Kexec, err = p.Kexec.Padded(pad); err != nil {
		return err
	}
	if p.ISO, err = p.ISO.Padded(pad); err != nil {
		return err
	}
	addr := net.JoinHostPort(f.plan.GW4.String(), fmt.Sprint(PayloadPort))
	base, stop, err := payload.Serve(f.ctx, &p, addr)
	if err != nil {
		base, stop, err = payload.Serve(f.ctx, &p, net.JoinHostPort(f.plan.GW4.String(), "0"))
	}
	if err != nil {
		return err
	}
	f.onDown(func(context.Context) error { return stop() })
	f.mu.Lock()
	defer f.mu.Unlock()
	f.payload, f.payloadURL = &p, base
	f.payloadVars = [][2]string{
		{"nixos_iso_url", base + "/" + p.ISO.Name},
		{"nixos_iso_sha256", p.ISO.SHA256},
		{"kexec_url", base + "/" + p.Kexec.Name},
		{"kexec_sha256", p.Kexec.SHA256},
		// The rehearsal's controller evaluates flakes with the payload's
		// offline stand-in, never with a Nix that would fetch inputs.
		{"controller_nix", p.ControllerNix},
	}
	return nil
}

// Payload is the NixOS payload the fleet serves, nil without one.
func (f *Fleet) Payload() *payload.Payload {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.payload
}

// PayloadVars are the inventory variables fleet.yml gives every host to
// reach the payload (kexec_url, kexec_sha256, nixos_iso_url, ...).
func (f *Fleet) PayloadVars() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	vars := map[string]string{}
	for _, kv := range f.payloadVars {
		vars[kv[0]] = kv[1]
	}
	return vars
}

// installerSystem gives an installer boot the payload's NixOS installer:
// its store at /nix/store (writable, as the installer's is), its activation
// (/etc, /run/current-system) and its NixOS tools ahead of the rescue's.
func (f *Fleet) installerSystem(b *boot) {
	p := f.Payload()
	if p == nil {
		return
	}
	stage := b.cfg.StageDir
	upper, work := filepath.Join(stage, "store-upper"), filepath.Join(stage, "store-work")
	b.cfg.Dirs = append(b.cfg.Dirs, upper, work)
	b.cfg.Mounts = append(b.cfg.Mounts, hostinit.Mount{
		Source: "overlay", Target: "/nix/store", FSType: "overlay",
		Options: "lowerdir=" + p.StoreDir + ",upperdir=" + upper + ",workdir=" + work,
	})
	b.cfg.Activate = []string{p.System + "/activate"}
	for _, tool := range nixosTools(filepath.Join(p.StoreDir, strings.TrimPrefix(p.System, "/nix/store/"), "sw", "bin")) {
		b.cfg.Files = append(b.cfg.Files, hostinit.File{Path: "/usr/local/bin/" + tool, Link: p.System + "/sw/bin/" + tool})
	}
}

// nixosTools are the NixOS tools of a system's sw/bin (not its busybox
// applets, which the rescue's GNU tools do better), and its cryptsetup,
// whose open works without the device-mapper this kernel lacks.
func nixosTools(swBin string) []string {
	entries, _ := os.ReadDir(swBin)
	var tools []string
	for _, e := range entries {
		if n := e.Name(); n == "nix" || n == "cryptsetup" || strings.HasPrefix(n, "nixos-") || strings.HasPrefix(n, "nix-") {
			tools = append(tools, n)
		}
	}
	sort.Strings(tools)
	return tools
}
