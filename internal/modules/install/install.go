// Package install is the `install` module: it installs the NixOS system
// configured under a root (nix-channel, nixos-install), then takes the host
// over to it: unmounts the root, turns swap off, exports ZFS pools, sets the
// OVH netboot back to the disk, reboots and waits for the installed system
// to answer SSH with its new host key.
//
// The work comes in two stages because of where it runs. In the ISO path,
// nixos-install only runs inside the chroot the `chroot` module prepares,
// while unmounting, exporting and rebooting must happen outside it:
//
//   - stage: system (add the channel, nixos-install) goes under `chroot:`;
//   - stage: finish (unmount, swapoff, export, netboot, reboot, wait) never does;
//   - stage: all (the default) runs both, for installers that need no
//     chroot, such as the kexec one.
package install

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/nixbook/nixbook/internal/clock"
	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
	"github.com/nixbook/nixbook/internal/modules/internal/netboot"
	"github.com/nixbook/nixbook/internal/modules/internal/nixosgen"
	"github.com/nixbook/nixbook/internal/ovh"
)

// Stages.
const (
	StageSystem = "system"
	StageFinish = "finish"
	StageAll    = "all"
)

// DefaultRelease is the NixOS release a new install gets unless told
// otherwise: the channel generated configurations are installed from and
// their system.stateVersion. It is a supported release; the kexec
// installer's own release is independent of it.
const DefaultRelease = "26.05"

// DefaultChannel is the channel of DefaultRelease.
const DefaultChannel = "https://nixos.org/channels/nixos-" + DefaultRelease

// ChannelURL is the nixos.org channel of a release such as 26.05 (or
// unstable).
func ChannelURL(release string) string { return "https://nixos.org/channels/nixos-" + release }

// releasePattern is what a NixOS release looks like: 26.05, or unstable.
var releasePattern = regexp.MustCompile(`^([0-9]{2}\.(05|11)|unstable)$`)

// ValidRelease reports whether s names a NixOS release such as 26.05.
func ValidRelease(s string) bool { return releasePattern.MatchString(s) }

// ChannelName is the name nixos-install looks the channel up by
// (<nixpkgs> comes from the `nixos` channel).
const ChannelName = "nixos"

// MarkerPath is where, under the root, a successful install records the
// checksums of the configuration it installed, so that a rerun knows there
// is nothing to do.
const MarkerPath = "/var/lib/nixbook/installed"

// Args are the arguments of `install`.
type Args struct {
	Stage           string            `yaml:"stage" default:"all" doc:"system: add the channel and run nixos-install (put the task under chroot: in the ISO path); finish: unmount the root, swapoff, export ZFS pools, set the netboot to the disk, reboot and wait for the installed system (never under chroot:); all: both, when no chroot is needed (kexec installer)"`
	Root            string            `yaml:"root" default:"/mnt" doc:"where the system to install is mounted"`
	Release         string            `yaml:"release" default:"26.05" doc:"the NixOS release to install (26.05, or unstable), whose nixos.org channel is used unless channel is set"`
	Channel         string            `yaml:"channel" doc:"the NixOS channel to install from, added as 'nixos'; default: https://nixos.org/channels/nixos-<release>"`
	Flake           string            `yaml:"flake" doc:"install a flake's system instead of configuration.nix: REF#NAME, NAME in nixosConfigurations (default: the inventory name); a local flake (./infra#ks1) has what git tracks copied to root/etc/nixos, with nixbook's generated files moved to its hosts/NAME/; a remote one (git+https://..., github:...) is fetched by the target; the system is evaluated first and refused if it would lock you out"`
	ExtraFiles      string            `yaml:"extra_files" doc:"a directory on the controller copied into the new system's root before nixos-install, owners (numeric) and modes kept, for secrets such as an age key; contents are never shown or logged"`
	GenerateHostKey bool              `yaml:"generate_host_key" doc:"give the new system an ed25519 host key nixbook generates on the controller (kept 0600 in host-keys/ beside its known_hosts): installed before nixos-install, and pinned in known_hosts before the reboot, so the installed system's key is never trusted on first use; set it on both stages"`
	BuildOn         string            `yaml:"build_on" default:"target" doc:"where a flake's system is built: target (nixos-install --flake on the server) or local (nix build on the controller, then its closure copied into the server's store and installed with nixos-install --system; Nix's store builds each distinct system once, however many servers install it)"`
	ControllerNix   string            `yaml:"controller_nix" doc:"the Nix on the controller that evaluates a flake's system before anything on the server changes (in --check too), refusing one that would lock you out; default: nix on PATH, if any; none: only the server evaluates it, just before nixos-install"`
	InstallArgs     modkit.Argv       `yaml:"install_args" doc:"more arguments for nixos-install, such as --option substituters URL"`
	Service         string            `yaml:"service" var:"ovh_service" doc:"the server's OVH service name, to set its netboot back to the disk; default: the host's ovh_service variable; without one the netboot is left as it is"`
	Endpoint        string            `yaml:"endpoint" doc:"the OVH API endpoint, as in the rescue module; default: the host's ovh_endpoint variable"`
	Reboot          bool              `yaml:"reboot" default:"true" doc:"reboot into the installed system and wait for it (stage finish and all)"`
	Timeout         modkit.Duration   `yaml:"timeout" default:"20m" doc:"how long the installed system may take to answer SSH after the reboot"`
	Pools           modkit.StringList `yaml:"pools" doc:"ZFS pools to export before the reboot; default: every imported pool (zpool list) and every pool mounted under root"`

	netboot.Inventory `yaml:",inline"`
	HostVars          `yaml:",inline"`
}

// HostVars are the inventory variables install reads beside its arguments:
// those a local flake's host folder is rendered from, as `nixbook
// generate` renders it, and the key nixbook logs in with.
type HostVars struct {
	nixosgen.InventoryVars `yaml:",inline"`
	FSLayout               any    `yaml:"-" var:"fs_layout" doc:"the host folder's file systems (a local flake)"`
	LoginKey               string `yaml:"-" var:"rescue_ssh_key" doc:"the key nixbook logs in with: a flake's system without it as a root key is noted"`
}

// Spec is the `install` module.
var Spec = modules.Spec{
	Name:    "install",
	Summary: "Install the NixOS configured under /mnt and reboot into it: nix-channel, nixos-install, unmount, swapoff, export pools, netboot to disk, reboot, wait.",
	Args:    Args{},
	Example: `- name: Install NixOS (inside the installer's chroot)
  install:
    stage: system
    release: "26.05"
  chroot: /root/rescue

- name: Boot the installed system
  install:
    stage: finish
    service: "{{ ovh_service }}"
    timeout: 20m
`,
	New: modkit.New(func(a Args) (modules.Module, error) {
		return newModule(a)
	}),
}

func newModule(a Args) (*module, error) {
	switch a.Stage {
	case StageSystem, StageFinish, StageAll:
	default:
		return nil, fmt.Errorf("stage: want system, finish or all, got %q", a.Stage)
	}
	a.Root = path.Clean(strings.TrimSpace(a.Root))
	if !path.IsAbs(a.Root) || a.Root == "/" {
		return nil, fmt.Errorf("root: want an absolute directory other than /, got %q", a.Root)
	}
	a.Release = strings.TrimSpace(a.Release)
	if !ValidRelease(a.Release) {
		return nil, fmt.Errorf("release: want a NixOS release such as %s (or unstable), got %q", DefaultRelease, a.Release)
	}
	a.Channel = strings.TrimSpace(a.Channel)
	if a.Channel == "" {
		a.Channel = ChannelURL(a.Release)
	}
	if !strings.HasPrefix(a.Channel, "https://") && !strings.HasPrefix(a.Channel, "http://") {
		return nil, fmt.Errorf("channel: want an http(s) URL such as %s, got %q", DefaultChannel, a.Channel)
	}
	if a.Timeout <= 0 {
		return nil, errors.New("timeout must be positive")
	}
	switch a.BuildOn {
	case BuildOnTarget:
	case BuildOnLocal:
		if strings.TrimSpace(a.Flake) == "" {
			return nil, errors.New("build_on: local builds a flake's system on the controller: give flake")
		}
	default:
		return nil, fmt.Errorf("build_on: want target or local, got %q", a.BuildOn)
	}
	a.Flake = strings.TrimSpace(a.Flake)
	if a.Flake != "" {
		if _, err := parseFlake(a.Flake, "host"); err != nil {
			return nil, err
		}
	}
	if a.Endpoint != "" {
		if _, err := ovh.EndpointURL(a.Endpoint); err != nil {
			return nil, err
		}
	}
	for _, p := range a.Pools {
		if p == "" || strings.ContainsAny(p, "/@ \t") {
			return nil, fmt.Errorf("pools: %q is not a pool name", p)
		}
	}
	return &module{args: a}, nil
}

type module struct {
	args  Args
	clock clock.Clock // zero: real time
	// routes says whether this controller has a route to an address; nil:
	// its routing table says (controllerRoutes).
	routes func(addr string) error
}

type plan struct {
	system *systemPlan
	finish *finishPlan
}

// InstalledNixOS reports whether facts describe an installed NixOS: not
// the installer, not OVH's rescue.
func InstalledNixOS(f *facts.Facts) bool {
	return f.OS.ID == "nixos" && f.OS.VariantID != "installer" && !f.Rescue
}

func describeOS(f *facts.Facts) string {
	if f.OS.PrettyName != "" {
		return f.OS.PrettyName
	}
	return strings.TrimSpace(f.OS.ID + " " + f.OS.VersionID)
}

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	if f := h.Facts(); InstalledNixOS(f) {
		return &modules.Plan{
			Message: fmt.Sprintf("%s already runs the installed %s", h.Name(), describeOS(f)),
			Output:  modules.Output{"installed": true, "os": describeOS(f)},
		}, nil
	}
	p := &plan{}
	out := &modules.Plan{Data: p}
	var notes []string
	if m.args.Stage != StageFinish {
		sp, changes, note, err := m.checkSystem(ctx, h)
		if err != nil {
			return nil, err
		}
		p.system = sp
		out.Changes = append(out.Changes, changes...)
		notes = append(notes, note)
	}
	if m.args.Stage != StageSystem {
		fp, changes, note, err := m.checkFinish(ctx, h, m.args.Stage == StageFinish)
		if err != nil {
			return nil, err
		}
		p.finish = fp
		out.Changes = append(out.Changes, changes...)
		out.Reboots = m.args.Reboot
		notes = append(notes, note)
	}
	out.Message = joinNotes(notes)
	return out, nil
}

func joinNotes(notes []string) string {
	var kept []string
	for _, n := range notes {
		if n != "" {
			kept = append(kept, n)
		}
	}
	return strings.Join(kept, "; ")
}

func (m *module) Apply(ctx context.Context, h modules.Host, pl *modules.Plan) (modules.Output, error) {
	p, err := modkit.PlanData[*plan](pl)
	if err != nil {
		return nil, err
	}
	out := modules.Output{}
	if p.system != nil {
		if err := m.applySystem(ctx, h, p.system, out); err != nil {
			return out, err
		}
	}
	if p.finish != nil {
		if err := m.applyFinish(ctx, h, p.finish, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Preflight proves, before the play changes anything, that the OVH service
// whose netboot the finish stage sets is this host.
//
// It also evaluates a flake's system on the controller and refuses one
// that would lock the user out, before the rescue reboot and the wipe.
func (m *module) Preflight(ctx context.Context, h modules.ReadOnlyHost) error {
	if InstalledNixOS(h.Facts()) {
		return nil
	}
	if service := m.service(); m.args.Stage != StageSystem && service != "" {
		if err := netboot.VerifyHost(ctx, m.args.Endpoint, h, service, m.args.Inventory); err != nil {
			return err
		}
	}
	if m.args.Flake != "" && m.args.Stage != StageFinish {
		return m.preflightFlake(ctx, h)
	}
	return nil
}

// Requires reports missing OVH API credentials, before any host is touched,
// for a host whose netboot the finish stage sets.
func (m *module) Requires(api modules.APICheck) error {
	if m.args.Stage == StageSystem || strings.TrimSpace(m.args.Service) == "" {
		return nil
	}
	return errors.Join(api(m.args.Endpoint), m.args.Inventory.Check())
}

// service is the OVH service a task means, or "" when the host has none.
func (m *module) service() string {
	s, err := netboot.Service(m.args.Service)
	if err != nil {
		return ""
	}
	return s
}
