// Package nixosconfig writes the NixOS configuration of a server being
// reinstalled: it runs nixos-generate-config for the hardware, then writes
// configuration.nix and a network file from the task's arguments and the
// host's facts, such that the server comes back on its network and accepts
// root's key. It refuses what would lock the user out (no sshd, no key, a
// NIC or address the facts contradict) and what the mounted layout lacks
// (ZFS support, an EFI system partition), and parses the result with
// nix-instantiate on the controller when it is installed.
//
// The uplink is named by its MAC address by default (nic_naming: mac): the
// rescue system's kernel and udev may name the NIC differently from NixOS
// (eth0 against eno1, or a predicted enp3s0 that is only an altname), and
// kernel updates have renamed NICs; a name pinned to the MAC survives all
// of that and hosts with several NICs. eth0 (usePredictableInterfaceNames
// = false) is as safe with one NIC; predictable trusts the name udev
// predicted on the running system.
package nixosconfig

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/fileplan"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
	"github.com/nixbook/nixbook/internal/modules/internal/nixosgen"
	"github.com/nixbook/nixbook/internal/transport"
)

// Spec is the `nixos_config` module.
var Spec = modules.Spec{
	Name:    "nixos_config",
	Summary: "Generate the hardware configuration and write configuration.nix and its network file for the server being installed.",
	Args:    nixosgen.Args{},
	Example: `- name: Configure the new system
  nixos_config:
    root: /mnt
    ssh_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@example.org
    ipv4: "{{ ipv4 | default('') }}"
    ipv6: "{{ ipv6 | default('') }}"
    ipv6_gateway: "{{ ipv6_gateway | default('') }}"
    disks: "{{ disks }}"
    extra: |
      time.timeZone = "Europe/Paris";
`,
	New: modkit.New(newModule),
}

func newModule(a nixosgen.Args) (modules.Module, error) {
	if err := nixosgen.Validate(&a); err != nil {
		return nil, err
	}
	return &module{args: a}, nil
}

type module struct{ args nixosgen.Args }

// plan is what Check hands to Apply.
type plan struct {
	root     string
	generate *transport.Cmd // nixos-generate-config, when it must run
	// settle waits, before generate, for udev to have made the
	// /dev/disk/by-uuid links of file systems just made: without them
	// nixos-generate-config names a root by its kernel name (/dev/sdb3),
	// which may be another disk's at the next boot.
	settle       *transport.Cmd
	files        []nixosgen.HostFile
	requireMount bool
}

func (p *plan) dir() string { return path.Join(p.root, "etc/nixos") }

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	root := m.args.Root
	procMounts, err := h.ReadFile(ctx, "/proc/self/mounts")
	if err != nil {
		return nil, fmt.Errorf("read the host's mounts: %w", err)
	}
	layout := nixosgen.ReadLayout(string(procMounts), root)
	cfg, err := nixosgen.Configure(m.args, h.Name(), h.Facts(), layout)
	if err != nil {
		return nil, err
	}
	p := &plan{root: root, requireMount: m.args.RequireMount, files: cfg.Files}
	switch err := nixosgen.ParseCheck(ctx, p.files, p.dir()); {
	case errors.Is(err, nixosgen.ErrNoNix):
		h.Log("nix-instantiate is not installed on the controller: the configuration is not parse-checked")
	case err != nil:
		return nil, err
	}

	out := &modules.Plan{Data: p, Output: cfg.Output(p.dir())}
	notes := cfg.Notes
	if login := m.args.LoginKey; login != "" && !cfg.Authorizes(login) {
		notes = append(notes, fmt.Sprintf("no key of ssh_keys is %s, the key nixbook logs in with: the installed system will not let nixbook in to check it", varLoginKey))
	}
	if !layout.RootMounted && m.args.RequireMount {
		notes = append(notes, "the run refuses to write until a file system is mounted there")
	}
	out.Message = strings.Join(notes, "; ")

	regenerate, err := m.needsGeneration(ctx, h, layout)
	if err != nil {
		return nil, err
	}
	if regenerate != "" {
		c := modules.Change{Summary: "generate " + nixosgen.HardwarePath(root) + " (" + regenerate + ")"}
		settle := c.Cmd("udevadm", "settle", "--timeout=10")
		cmd := c.Cmd("nixos-generate-config", "--root", root)
		p.settle, p.generate = &settle, &cmd
		out.Changes = append(out.Changes, c)
	}

	dirExists, err := isDir(ctx, h, p.dir())
	if err != nil {
		return nil, err
	}
	for _, f := range p.files {
		dest := path.Join(p.dir(), f.Name)
		if !dirExists {
			// nixos-generate-config makes the directory; until then every
			// file is new.
			out.Changes = append(out.Changes, modules.Change{
				Summary: fmt.Sprintf("create %s (%d B)", dest, len(f.Content)),
				After:   string(f.Content),
			})
			continue
		}
		fp, err := fileplan.Plan(ctx, h, fileArgs(dest), f.Content)
		if err != nil {
			return nil, err
		}
		out.Changes = append(out.Changes, fp.Changes...)
	}
	return out, nil
}

// needsGeneration says why nixos-generate-config must run, or "".
func (m *module) needsGeneration(ctx context.Context, h modules.ReadOnlyHost, layout nixosgen.Layout) (string, error) {
	hw, err := h.ReadFile(ctx, nixosgen.HardwarePath(m.args.Root))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "it does not exist", nil
	case err != nil:
		return "", err
	case m.args.Regenerate:
		return "regenerate: true", nil
	case !layout.RootMounted:
		return "", nil
	}
	var probeErr error
	why := nixosgen.StaleHardware(string(hw), layout, func(devices []string) []string {
		gone, err := missingPaths(ctx, h, devices)
		probeErr = err
		return gone
	})
	if probeErr != nil {
		return "", probeErr
	}
	if why != "" {
		why = "stale: " + why
	}
	return why, nil
}

// missingPaths lists which of paths do not exist on the host, in one probe.
func missingPaths(ctx context.Context, h modules.ReadOnlyHost, paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	res, err := h.Probe(ctx, transport.Cmd{Args: append([]string{"stat", "-L", "-c", "%n", "--"}, paths...)})
	var exit *transport.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, fmt.Errorf("probe %s: %w", strings.Join(paths, " "), err)
	}
	found := map[string]bool{}
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		found[l] = true
	}
	var gone []string
	for _, p := range paths {
		if !found[p] {
			gone = append(gone, p)
		}
	}
	return gone, nil
}

// varLoginKey is the host variable holding the public key nixbook logs in
// with (the rescue module sets it as OVH's rescueSshKey).
const varLoginKey = "rescue_ssh_key"

func isDir(ctx context.Context, h modules.ReadOnlyHost, dir string) (bool, error) {
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"test", "-d", dir}})
	var exit *transport.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &exit) && res.ExitCode == 1:
		return false, nil
	}
	return false, fmt.Errorf("probe %s: %w", dir, err)
}

func fileArgs(dest string) fileplan.File {
	mode := fileplan.Mode(0o644)
	return fileplan.File{Dest: dest, Mode: &mode}
}

func (m *module) Apply(ctx context.Context, h modules.Host, pl *modules.Plan) (modules.Output, error) {
	p, err := modkit.PlanData[*plan](pl)
	if err != nil {
		return nil, err
	}
	if p.requireMount {
		data, err := h.ReadFile(ctx, "/proc/self/mounts")
		if err != nil {
			return nil, fmt.Errorf("read the host's mounts: %w", err)
		}
		if !nixosgen.ReadLayout(string(data), p.root).RootMounted {
			return nil, fmt.Errorf("nothing is mounted at %s: mount the new system there first (the partition or zfs task), or set require_mount: false", p.root)
		}
	}
	if p.settle != nil {
		if _, err := h.Run(ctx, *p.settle); err != nil {
			// A chroot without udev: the links are what they are.
			h.Log("udevadm settle: %v", err)
		}
	}
	if p.generate != nil {
		res, err := h.Run(ctx, *p.generate)
		if err != nil {
			var exit *transport.ExitError
			if errors.As(err, &exit) && res.ExitCode == 127 {
				return nil, fmt.Errorf("nixos-generate-config is not on the host's PATH: run this task in the NixOS installer (after kexec) or with chroot: into the unpacked NixOS store: %w", err)
			}
			return nil, fmt.Errorf("nixos-generate-config: %w: %s", err, strings.TrimSpace(string(res.Stderr)))
		}
	}
	// nixos-generate-config may just have written a configuration.nix of
	// its own, so each file is planned again against what is there now.
	for _, f := range p.files {
		fp, err := fileplan.Plan(ctx, h, fileArgs(path.Join(p.dir(), f.Name)), f.Content)
		if err != nil {
			return nil, err
		}
		if !fp.Changed() {
			continue
		}
		if _, err := fileplan.Apply(ctx, h, fp); err != nil {
			return nil, err
		}
	}
	return pl.Output, nil
}
