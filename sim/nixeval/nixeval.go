// Package nixeval evaluates an installed NixOS configuration with the real
// Nix evaluator (Debian's nix-instantiate) against stubs for pkgs, lib and
// the option defaults, and judges whether the system it describes would
// come back on the network of a simulated server.
package nixeval

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/nixbook/nixbook/internal/nixenv"
)

//go:embed nix
var nixFiles embed.FS

// Host is what the simulated server really is: the facts a configuration
// must match to come back on the network.
type Host struct {
	Name string
	// NIC is the name the installed system's kernel gives the uplink with
	// predictable names on (may differ from eth0, as on real hardware).
	NIC         string
	MAC         string
	IPv4CIDR    string // 203.0.113.10/24
	IPv4Gateway string
	IPv6CIDR    string // 2001:db8:1:10::1/64
	IPv6Gateway string // outside the /64, as OVH does it
	Disks       []string
	// DiskAliases maps other names of the disks (/dev/disk/by-id/...) to
	// the entry of Disks they point to.
	DiskAliases map[string]string
	ZFS         bool // the root file system lives on a ZFS pool
	UEFI        bool // the firmware boots in UEFI mode, not legacy BIOS
	// Controllers are the kernel modules of the disks' controllers (ahci,
	// nvme, megaraid_sas): the initrd must hold them to find the root.
	Controllers []string
	// Devices are the block devices and /dev/disk/by-* links the server
	// has at boot, each with the device it is then ("MAJ:MIN"); nil when
	// unknown (no file system device is checked).
	Devices map[string]string
	// Root is the device ("MAJ:MIN") of the file system that holds the
	// installed system; "" when unknown.
	Root string
}

// Installed is what a configuration sets, as far as coming back on the
// network is concerned.
type Installed struct {
	Hostname            string
	HostID              string
	Interfaces          map[string]Iface
	UsePredictableNames bool
	DefaultGateway      string
	DefaultGateway6     string
	SSHD                bool
	RootKeys            []string
	GrubDevices         []string
	EFIRemovable        bool
	ZFS                 bool
	StateVersion        string
	// Raw is the whole merged configuration as JSON data.
	Raw map[string]any

	DefaultGatewayInterface  string
	DefaultGateway6Interface string
	Nameservers              []string
	UseDHCP                  bool
	// Networkd is systemd.network.enable; Networks are its .network units.
	Networkd bool
	Networks map[string]NetworkdNetwork
	// Renames are interface names pinned by MAC (systemd .link units or
	// udev rules), applied whatever the network backend.
	Renames         []Rename
	RootKeyFiles    []string
	PermitRootLogin string
	SSHPorts        []int
	SSHOpenFirewall bool
	Firewall        bool
	AllowedTCPPorts []int
	GrubEnabled     bool
	EFISupport      bool
	SystemdBoot     bool
	MirroredBoots   []MirroredBoot
	FileSystems     map[string]FileSystem
	// InitrdModules are boot.initrd.availableKernelModules and
	// kernelModules; DefaultModules is boot.initrd.includeDefaultModules.
	InitrdModules  []string
	DefaultModules bool
}

// Iface is networking.interfaces.<name> (scripted networking).
type Iface struct {
	IPv4, IPv6     []Address
	Routes4        []Route
	Routes6        []Route
	UseDHCP        *bool
	HasLegacyAddrs bool // ip4/ip6, the pre-17.03 names nixpkgs still renames
}

// Address is an address with its prefix length.
type Address struct {
	Address      string
	PrefixLength int
}

// Route is one entry of ipv4.routes or ipv6.routes; no Via means on-link.
type Route struct {
	Address      string
	PrefixLength int
	Via          string
}

// NetworkdNetwork is the part of a systemd.network.networks unit that
// decides addressing.
type NetworkdNetwork struct {
	MatchName []string // globs of matchConfig.Name
	MatchMAC  []string
	Addresses []string // CIDR
	Gateways  []string
	Routes    []NetworkdRoute
	DHCP      string
}

// NetworkdRoute is a [Route] section.
type NetworkdRoute struct {
	Destination   string
	Gateway       string
	GatewayOnLink bool
}

// Rename pins an interface name to a MAC address.
type Rename struct {
	MAC, Name, Source string
}

// MirroredBoot is one entry of boot.loader.grub.mirroredBoots.
type MirroredBoot struct {
	Path    string
	Devices []string
}

// FileSystem is one fileSystems entry.
type FileSystem struct {
	Device, FSType string
	Options        []string
}

// EvalError is an evaluation that Nix refused, with where it failed.
type EvalError struct {
	Message string // first line of Nix's message, without "error: "
	Where   string // file:line:col, relative to the evaluated root
	Stderr  string // everything Nix said
}

func (e *EvalError) Error() string {
	if e.Where == "" {
		return e.Message
	}
	return e.Message + " at " + e.Where
}

// ErrNoNix means nix-instantiate is not installed.
var ErrNoNix = errors.New("nix-instantiate not found (apt-get install nix-bin)")

// Evaluator returns the Nix files that do the evaluation (eval.nix, lib.nix
// and stub modules under modules/), for tools that run it elsewhere, such
// as the payload's nixos-install stand-in.
func Evaluator() fs.FS {
	sub, err := fs.Sub(nixFiles, "nix")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Evaluate evaluates root/etc/nixos/configuration.nix and its imports with
// nix-instantiate and returns what it sets. A configuration that Nix
// refuses yields an *EvalError naming the attribute or syntax at fault.
func Evaluate(ctx context.Context, root string) (*Installed, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", root, err)
	}
	configFile := filepath.Join(root, "etc", "nixos", "configuration.nix")
	if _, err := os.Stat(configFile); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	return evaluate(ctx, root, configFile, filepath.Dir(configFile), "eval.nix", "--argstr", "configFile", configFile)
}

// EvaluateFlake evaluates the system nixosConfigurations.<name> of the
// flake in flakeDir, a directory under root (the installed system's root as
// mounted here), and returns what it sets. Nix 2.8 cannot evaluate a flake
// offline, so flake.nix is imported as a file and its outputs are called
// with stub inputs (see nix/flake-eval.nix): nixpkgs.lib.nixosSystem hands
// its modules to the same evaluation as a configuration.nix. Modules that
// come from other inputs are empty.
func EvaluateFlake(ctx context.Context, root, flakeDir, name string) (*Installed, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", root, err)
	}
	flakeDir, err = filepath.Abs(flakeDir)
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", flakeDir, err)
	}
	if _, err := os.Stat(filepath.Join(flakeDir, "flake.nix")); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	return evaluate(ctx, root, filepath.Join(flakeDir, "flake.nix"), flakeDir, "flake-eval.nix",
		"--argstr", "flakeDir", flakeDir, "--argstr", "name", name)
}

// evaluate runs the evaluator file with args, for the configuration whose
// files are under dir.
func evaluate(ctx context.Context, root, what, dir, evaluator string, args ...string) (*Installed, error) {
	nixInstantiate, err := exec.LookPath("nix-instantiate")
	if err != nil {
		return nil, ErrNoNix
	}
	work, err := os.MkdirTemp("", "nixeval-")
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	defer os.RemoveAll(work)

	// The stub modules also sit where <nixpkgs/nixos/modules/...> looks.
	nixpkgs := filepath.Join(work, "nixpkgs")
	if err := os.CopyFS(filepath.Join(nixpkgs, "nixos"), Evaluator()); err != nil {
		return nil, fmt.Errorf("evaluate: write evaluator: %w", err)
	}
	noNixpkgs := []byte(`throw "import <nixpkgs> is not available: the simulator evaluates configurations against stubs"` + "\n")
	if err := os.WriteFile(filepath.Join(nixpkgs, "default.nix"), noNixpkgs, 0o644); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	names, err := packageNames(dir)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	namesFile := filepath.Join(work, "pkg-names.json")
	if err := writeJSON(namesFile, names); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}

	argv := append([]string{"--readonly-mode", "--eval", "--strict", "--json",
		filepath.Join(nixpkgs, "nixos", evaluator)}, args...)
	argv = append(argv,
		"--argstr", "modulesPath", filepath.Join(nixpkgs, "nixos", "modules"),
		"--argstr", "pkgNamesFile", namesFile)
	cmd := exec.CommandContext(ctx, nixInstantiate, argv...)
	cmd.Env = nixenv.Scratch(work, "NIX_PATH=nixpkgs="+nixpkgs)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("evaluate %s: %w", what, ctx.Err())
		}
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return nil, parseNixError(stderr.String(), root)
		}
		return nil, fmt.Errorf("evaluate %s: %w", what, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &raw); err != nil {
		return nil, fmt.Errorf("evaluate %s: decode nix output: %w", what, err)
	}
	return extract(raw)
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

var identifier = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_'-]*`)

var nixKeywords = map[string]bool{
	"let": true, "in": true, "with": true, "rec": true, "inherit": true,
	"if": true, "then": true, "else": true, "assert": true, "or": true,
	"true": true, "false": true, "null": true, "import": true,
}

// packageNames lists the identifiers of the configuration's files: pkgs
// gets a stub for each, so `with pkgs; [ ripgrep ]` evaluates without the
// simulator knowing every package of nixpkgs. The price is that a package
// name with a typo is not caught; the simulator does not build packages.
func packageNames(dir string) ([]string, error) {
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".nix") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, id := range identifier.FindAllString(string(data), -1) {
			if !nixKeywords[id] {
				seen[id] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	names := make([]string, 0, len(seen))
	for id := range seen {
		names = append(names, id)
	}
	sort.Strings(names)
	return names, nil
}

var (
	nixErrorLine = regexp.MustCompile(`(?m)^error: (.*)$`)
	nixAtLine    = regexp.MustCompile(`(?m)^\s*at (/[^:\s]+):(\d+):(\d+):?\s*$`)
	nixAtInline  = regexp.MustCompile(`, at (/[^:\s]+):(\d+):(\d+)$`)
)

// parseNixError turns Nix 2.8's message into an EvalError whose file names
// are relative to the evaluated root, as the user knows them.
func parseNixError(stderr, root string) *EvalError {
	e := &EvalError{Message: strings.TrimSpace(stderr), Stderr: stderr}
	// The last "error:" is the innermost cause; the ones above it are trace.
	if all := nixErrorLine.FindAllStringSubmatchIndex(stderr, -1); len(all) > 0 {
		last := all[len(all)-1]
		e.Message = strings.TrimSpace(stderr[last[2]:last[3]])
		rest := stderr[last[1]:]
		if m := nixAtInline.FindStringSubmatch(e.Message); m != nil {
			e.Message = strings.TrimSuffix(e.Message, m[0])
			e.Where = relWhere(m[1], m[2], m[3], root)
		} else if m := nixAtLine.FindStringSubmatch(rest); m != nil {
			e.Where = relWhere(m[1], m[2], m[3], root)
		}
		// Some messages go on over several lines before the position.
		if e.Where == "" || !strings.Contains(e.Message, "`") {
			if more := continuation(rest); more != "" {
				if !strings.HasSuffix(e.Message, ":") {
					e.Message += ":"
				}
				e.Message += " " + more
			}
		}
	}
	// Files are named as on the installed system, not as on the controller.
	e.Message = strings.ReplaceAll(e.Message, root+"/", "/")
	return e
}

// continuation returns the text lines that follow an error's first line,
// up to its position or trace, such as the list of conflicting files.
func continuation(rest string) string {
	var lines []string
	for _, line := range strings.Split(rest, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "at ") || strings.HasPrefix(trimmed, "(use ") || strings.HasPrefix(trimmed, "… ") {
			break
		}
		if trimmed != "" {
			lines = append(lines, trimmed)
		}
	}
	return strings.Join(lines, " ")
}

func relWhere(file, line, col, root string) string {
	if rel, err := filepath.Rel(root, file); err == nil && !strings.HasPrefix(rel, "..") {
		file = "/" + rel
	}
	return file + ":" + line + ":" + col
}
