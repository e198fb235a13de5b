// Package payload builds the NixOS artifacts a simulated fleet installs
// from, out of Debian's packages since nothing can be downloaded: a
// NixOS-shaped minimal ISO whose nix-store.squashfs holds a store with a
// stage-2 init, a static bash, busybox, ssh-keygen and stand-ins for the
// NixOS installer tools, and a nixos-images style kexec installer tarball.
// Serve publishes them over HTTP with their sha256.
package payload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/nixbook/nixbook/internal/apt"
	"github.com/nixbook/nixbook/internal/buildonce"
	"github.com/nixbook/nixbook/sim/nixeval"
)

//go:embed scripts
var scripts embed.FS

// formatVersion changes whenever Build lays artifacts out differently, so
// that caches from an older layout are not reused.
const formatVersion = "nixbook-sim-payload-5"

// Options says where to cache the artifacts and which release they are.
type Options struct {
	Dir     string // cache directory; artifacts live in Dir/payload-<key>/
	Version string // NixOS release, e.g. "24.05" (the default)
}

// Artifact is one downloadable file.
type Artifact struct {
	Name   string // file name, as in the URL
	Path   string // where it is on this machine
	SHA256 string // hex
	Size   int64
	// Padding is how many zero bytes are served after the file (see
	// Padded); Size and SHA256 count them.
	Padding int64
}

// Payload is a built set of artifacts.
type Payload struct {
	ISO, Kexec Artifact
	// Release is the NixOS release (24.05); FullVersion what nixos-version
	// prints (24.05.20240528.<rev>); Label the ISO's volume label.
	Release, FullVersion, Label string
	// StoreDir is nix-store.squashfs unpacked: what the kexec'd installer
	// mounts at /nix/store. System is the installer's system path in it;
	// System/sw/bin holds every tool, System/activate sets up /etc and
	// /run/current-system.
	StoreDir, System string
	// ControllerNix is the `nix eval` stand-in for the controller (a local
	// flake's system evaluated offline with stub inputs, as on the hosts),
	// for the inventory's controller_nix.
	ControllerNix string
}

var releasePattern = regexp.MustCompile(`^[0-9]{2}\.(05|11)$`)

// Build makes the artifacts, or returns the cached ones when nothing that
// goes into them has changed.
func Build(ctx context.Context, opts Options) (*Payload, error) {
	if opts.Dir == "" {
		return nil, errors.New("payload: Options.Dir is required")
	}
	if opts.Version == "" {
		opts.Version = "24.05"
	}
	if !releasePattern.MatchString(opts.Version) {
		return nil, fmt.Errorf("payload: version %q is not a NixOS release like 24.05", opts.Version)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	tools, err := ensureTools(ctx)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	key, err := inputKey(ctx, opts.Version, tools)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	final := filepath.Join(dir, "payload-"+key)
	load := func() (*Payload, error) { return loadManifest(final) }
	p, err := buildonce.Do(ctx, filepath.Join(dir, "build.lock"), LockWait, nil, load, func(ctx context.Context) error {
		return buildInto(ctx, dir, final, opts.Version, tools)
	})
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return p, nil
}

// LockWait bounds the wait for another process's build of the same
// payload (a cold one takes seconds).
const LockWait = 15 * time.Minute

// buildInto builds in a temporary directory of dir and renames it to
// final, so that final appears whole or not at all. It runs under the
// build lock.
func buildInto(ctx context.Context, dir, final, version string, tools tools) error {
	removeStaleWork(dir)
	work, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	p, err := build(ctx, work, version, tools)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if err := writeManifest(work, p); err != nil {
		return err
	}
	// An entry that is there but does not load (an artifact missing or
	// truncated) is replaced.
	if _, err := os.Lstat(final); err == nil {
		if _, lerr := loadManifest(final); lerr == nil {
			return nil
		}
		if err := os.RemoveAll(final); err != nil {
			return err
		}
	}
	if err := os.Rename(work, final); err != nil {
		// A builder without the lock (an older nixbook) may have won.
		if _, lerr := loadManifest(final); lerr == nil {
			return nil
		}
		return err
	}
	return nil
}

// removeStaleWork removes the work directories of builds that were killed
// half way. Builds run under the lock, so none is running now; the age
// spares one of an older nixbook that built without the lock.
func removeStaleWork(dir string) {
	entries, _ := filepath.Glob(filepath.Join(dir, ".build-*"))
	for _, e := range entries {
		if st, err := os.Stat(e); err == nil && time.Since(st.ModTime()) > time.Hour {
			_ = os.RemoveAll(e)
		}
	}
}

// CacheEnv names the environment variable that overrides DefaultDir.
const CacheEnv = "NIXBOOK_SIM_CACHE"

// DefaultDir is where the simulated fleet and the tests cache the payload
// (and the hosts' helper, in its bin/): $NIXBOOK_SIM_CACHE, else nixbook-sim
// in the user's cache directory (~/.cache/nixbook-sim).
func DefaultDir() (string, error) {
	if d := os.Getenv(CacheEnv); d != "" {
		return d, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "nixbook-sim"), nil
}

// tools are the Debian files the payload is made of.
type tools struct {
	bash, busybox, sshKeygen, loader string
	libs                             []string
	bashVersion, busyboxVersion      string
	opensshVersion                   string
	xorriso, mksquashfs              string
}

// inputKey digests everything the artifacts are made of.
func inputKey(ctx context.Context, version string, t tools) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00", formatVersion, version, t.bashVersion, t.busyboxVersion, t.opensshVersion)
	for _, f := range append([]string{t.bash, t.busybox, t.sshKeygen, t.loader}, t.libs...) {
		d, err := fileDigest(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%x\x00", f, d)
	}
	for _, tool := range []string{t.xorriso, t.mksquashfs} {
		out, _ := exec.CommandContext(ctx, tool, "-version").CombinedOutput()
		first, _, _ := strings.Cut(string(out), "\n")
		fmt.Fprintf(h, "%s\x00", first)
	}
	for _, tree := range []fs.FS{scripts, nixeval.Evaluator()} {
		err := fs.WalkDir(tree, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(tree, path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%x\x00", path, sha256.Sum256(data))
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return hexDigest(h.Sum(nil))[:16], nil
}

// debianTools maps a command to the Debian package that provides it.
var debianTools = []struct{ path, pkg string }{
	{"/usr/bin/xorriso", "xorriso"},
	{"/usr/bin/mksquashfs", "squashfs-tools"},
	{"/bin/bash-static", "bash-static"},
	{"/bin/busybox", "busybox-static"},
	{"/usr/bin/ssh-keygen", "openssh-client"},
	{"/usr/bin/ldd", "libc-bin"},
	{"/usr/bin/nix-instantiate", "nix-bin"},
}

// ensureTools finds the Debian files, installing missing packages with
// apt-get when running as root.
func ensureTools(ctx context.Context) (tools, error) {
	var missing []string
	for _, tool := range debianTools {
		if _, err := os.Stat(tool.path); err != nil {
			missing = append(missing, tool.pkg)
		}
	}
	if len(missing) > 0 {
		if os.Geteuid() != 0 {
			return tools{}, fmt.Errorf("missing Debian packages: apt-get install %s", strings.Join(missing, " "))
		}
		if err := apt.Install(ctx, missing...); err != nil {
			return tools{}, err
		}
	}
	t := tools{
		bash:       "/bin/bash-static",
		busybox:    "/bin/busybox",
		sshKeygen:  "/usr/bin/ssh-keygen",
		xorriso:    "/usr/bin/xorriso",
		mksquashfs: "/usr/bin/mksquashfs",
	}
	for _, f := range []string{t.bash, t.busybox} {
		if err := requireStatic(f); err != nil {
			return tools{}, err
		}
	}
	var err error
	if t.loader, t.libs, err = sharedLibraries(ctx, t.sshKeygen); err != nil {
		return tools{}, err
	}
	t.bashVersion = debianVersion(ctx, "bash-static")
	t.busyboxVersion = debianVersion(ctx, "busybox-static")
	t.opensshVersion = debianVersion(ctx, "openssh-client")
	return t, nil
}

// requireStatic refuses a dynamically linked binary: in the chroot of
// the unpacked store there are no libraries.
func requireStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked: install the -static package", path)
		}
	}
	return nil
}

// release facts shared with the nixos-install stand-in, which computes
// the same version string for the release it installs.
func fullVersion(release string) string {
	rev := sha256.Sum256([]byte("nixos-" + release))
	yy, mm, _ := strings.Cut(release, ".")
	return fmt.Sprintf("%s.20%s%s28.%s", release, yy, mm, hexDigest(rev[:])[:12])
}

var codenames = map[string]string{
	"22.11": "Raccoon", "23.05": "Stoat", "23.11": "Tapir", "24.05": "Uakari",
	"24.11": "Vicuña", "25.05": "Warbler", "25.11": "Xantusia",
}

func codename(release string) string {
	if c, ok := codenames[release]; ok {
		return c
	}
	return "Unknown"
}

// scriptData fills the store paths into the scripts.
type scriptData struct {
	Bash, Busybox, OpenSSH, Eval, NixConf, Version, GrubHash string
}

func render(name string, data scriptData) ([]byte, error) {
	text, err := scripts.ReadFile("scripts/" + name)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New(name).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeScript(dir, rel, name string, data scriptData) error {
	text, err := render(name, data)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, text, 0o755)
}

func writeManifest(dir string, p *Payload) error {
	rel := *p
	rel.ISO.Path = filepath.Base(p.ISO.Path)
	rel.Kexec.Path = filepath.Base(p.Kexec.Path)
	rel.StoreDir = filepath.Base(p.StoreDir)
	rel.ControllerNix = controllerNix
	data, err := json.MarshalIndent(rel, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), append(data, '\n'), 0o644)
}

func loadManifest(dir string) (*Payload, error) {
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	var p Payload
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	p.ISO.Path = filepath.Join(dir, p.ISO.Path)
	p.Kexec.Path = filepath.Join(dir, p.Kexec.Path)
	p.StoreDir = filepath.Join(dir, p.StoreDir)
	p.ControllerNix = filepath.Join(dir, filepath.FromSlash(p.ControllerNix))
	if _, err := os.Stat(p.ControllerNix); err != nil {
		return nil, fmt.Errorf("%s: the controller's nix stand-in is missing: %w", dir, err)
	}
	for _, a := range []Artifact{p.ISO, p.Kexec} {
		if st, err := os.Stat(a.Path); err != nil || st.Size() != a.Size {
			return nil, fmt.Errorf("%s: artifact %s is missing or truncated", dir, a.Name)
		}
	}
	return &p, nil
}

func artifact(path string) (Artifact, error) {
	f, err := os.Open(path)
	if err != nil {
		return Artifact{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{Name: filepath.Base(path), Path: path, SHA256: hexDigest(h.Sum(nil)), Size: n}, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
