// Package chroot is the `chroot` module: it turns a directory holding a
// NixOS store (unpacked from the ISO by `unsquash`) into a root that tasks
// can run in, the 2015 rescue procedure's "fake boot": the usual
// directories, /dev, /proc and /sys bound in, /mnt (the target) bound in, the
// Nix sandbox off, the system's init run once with `exec systemd` replaced
// by a shell, and an environment file that tasks with `chroot:` source.
package chroot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/fetch"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
	"github.com/nixbook/nixbook/internal/transport"
)

// InitCopy is where, inside the root, the patched copy of the system's
// init goes; the store's own file stays as it was.
const InitCopy = "/nixbook-init"

// fhsDirs are the directories a NixOS root needs before its init runs.
var fhsDirs = []string{"bin", "etc", "dev", "proc", "sys", "tmp", "var", "root", "run", "usr/bin", "mnt"}

// kernelFS are the host's file systems bound into the root, recursively
// (so /dev/pts and /sys/firmware/efi/efivars come along).
var kernelFS = []string{"/dev", "/proc", "/sys"}

// Args are the arguments of `chroot`.
type Args struct {
	Root  string            `yaml:"root" required:"" doc:"the directory holding the unpacked store at nix/store (unsquash's root)"`
	State string            `yaml:"state" default:"present" doc:"present prepares the root; absent unmounts everything under it"`
	Bind  modkit.StringList `yaml:"bind" default:"[/mnt]" doc:"host directories bound into the root at the same path, with the mounts under them; mounts made there later on the host show inside too. /mnt holds the target file systems nixos-install writes to"`
}

// Spec is the `chroot` module.
var Spec = modules.Spec{
	Name:    "chroot",
	Summary: "Prepare a NixOS root from an unpacked store (binds, init run once, Nix sandbox off) for tasks that run with `chroot:`.",
	Args:    Args{},
	Example: `- name: Boot the ISO's system in a chroot
  chroot:
    root: /root/rescue

- name: Generate the hardware configuration inside it
  command: nixos-generate-config --root /mnt
  chroot: /root/rescue

- name: Leave the chroot
  chroot:
    root: /root/rescue
    state: absent
`,
	New: modkit.New(func(a Args) (modules.Module, error) {
		if err := a.validate(); err != nil {
			return nil, err
		}
		return &module{args: a}, nil
	}),
}

func (a *Args) validate() error {
	if !path.IsAbs(a.Root) {
		return fmt.Errorf("root %q: want an absolute path", a.Root)
	}
	a.Root = path.Clean(a.Root)
	if a.Root == "/" {
		return errors.New("root: / is the rescue system itself; give the directory holding the unpacked store")
	}
	if hostfs.Under(a.Root, hostfs.TargetRoot) {
		return fmt.Errorf("root %s is under %s, the installed system's root: choose a path outside it, such as /root/rescue", a.Root, hostfs.TargetRoot)
	}
	switch a.State {
	case "present", "absent":
	default:
		return fmt.Errorf("state %q: want present or absent", a.State)
	}
	for i, b := range a.Bind {
		if !path.IsAbs(b) {
			return fmt.Errorf("bind %q: want an absolute path", b)
		}
		b = path.Clean(b)
		if b == "/" || hostfs.Under(a.Root, b) {
			return fmt.Errorf("bind %s contains root %s: it would be bound into itself", b, a.Root)
		}
		if slices.Contains(kernelFS, b) {
			return fmt.Errorf("bind %s is bound anyway", b)
		}
		a.Bind[i] = b
	}
	return nil
}

type module struct{ args Args }

// in is p inside the root, as the host sees it.
func (m *module) in(p string) string { return path.Join(m.args.Root, p) }

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	if m.args.State == "absent" {
		return m.checkAbsent(ctx, h)
	}
	return m.checkPresent(ctx, h)
}

// step is one thing Apply does: commands, or an upload.
type step struct {
	cmds   []transport.Cmd
	upload *upload
	// stream sends the command's output to the host's log.
	stream bool
}

type upload struct {
	dest    string
	content string
	mode    fs.FileMode
}

// everyLine logs every line of the init's output: it is short and tells
// what activation did.
const everyLine = time.Nanosecond

type plan struct {
	steps []step
	// unresolved: the store was not there at check time (a dry run, or the
	// unsquash task ran after the check), so Apply plans again first.
	unresolved bool
}

func (m *module) checkPresent(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	a := m.args
	p := &plan{}
	var changes []modules.Change
	add := func(c modules.Change, s step) {
		changes = append(changes, c)
		p.steps = append(p.steps, s)
	}
	out := modules.Output{"root": a.Root, "env_file": transport.ChrootEnvFile}

	sys, err := m.findSystem(ctx, h)
	if err != nil {
		return nil, err
	}
	if sys == nil {
		// Nothing to look at yet: show the shape of the work.
		p.unresolved = true
		c := modules.Change{Summary: fmt.Sprintf("prepare %s as a NixOS root once its store is there (%s is empty or missing now: unsquash first)", a.Root, m.in("/nix/store"))}
		return &modules.Plan{Changes: []modules.Change{c}, Output: out, Data: p}, nil
	}
	out["system"], out["init"], out["bash"] = sys.system, sys.init, sys.bash

	mounts, err := hostfs.Mounts(ctx, h)
	if err != nil {
		return nil, err
	}
	mounted := func(target string) bool {
		return slices.ContainsFunc(mounts, func(s hostfs.MountState) bool { return s.Target == target })
	}
	// shared: a bind whose events still flow back to the host, left so by
	// a run cut short between its bind and its --make-rslave.
	shared := func(target string) bool {
		return slices.ContainsFunc(mounts, func(s hostfs.MountState) bool { return s.Shared() && hostfs.Under(s.Target, target) })
	}

	// A root that is not a mount point is bound onto itself: Nix (and
	// stage 2's `mount -o remount,rw /`) expect / to be one; this is the
	// `mount --bind / /` of the usual rescue recipes, seen from outside.
	if !mounted(a.Root) {
		c := modules.Change{Summary: fmt.Sprintf("bind %s onto itself so that it is a mount point", a.Root)}
		add(c, step{cmds: []transport.Cmd{c.Cmd("mount", "--bind", a.Root, a.Root)}})
	}

	stats, err := hostfs.StatFiles(ctx, h, m.fhsPaths()...)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, d := range fhsDirs {
		st, ok := stats[m.in(d)]
		switch {
		case !ok:
			missing = append(missing, m.in(d))
		case st.Type != "directory":
			return nil, fmt.Errorf("%s is a %s, not a directory", m.in(d), st.Type)
		}
	}
	if len(missing) > 0 {
		c := modules.Change{Summary: fmt.Sprintf("create the directories a NixOS root needs (%d)", len(missing))}
		s := step{cmds: []transport.Cmd{c.Cmd(append([]string{"mkdir", "-p", "--"}, missing...)...)}}
		if slices.Contains(missing, m.in("tmp")) {
			s.cmds = append(s.cmds, c.Cmd("chmod", "1777", "--", m.in("tmp")))
		}
		add(c, s)
	}

	// /bin/sh: the runner's chroot wrapper starts every command with it,
	// before and after the init has made its own.
	if _, ok := stats[m.in("bin/sh")]; !ok {
		c := modules.Change{Summary: fmt.Sprintf("link /bin/sh to %s inside the root", sys.bash)}
		add(c, step{cmds: []transport.Cmd{c.Cmd("ln", "-s", "--", sys.bash, m.in("bin/sh"))}})
	}

	for _, src := range append(slices.Clone(kernelFS), a.Bind...) {
		dst := m.in(src)
		if mounted(dst) {
			if shared(dst) {
				c := modules.Change{Summary: fmt.Sprintf("keep what happens under %s inside the root", dst)}
				add(c, step{cmds: []transport.Cmd{c.Cmd("mount", "--make-rslave", dst)}})
			}
			continue
		}
		if !slices.Contains(kernelFS, src) {
			if st, err := hostfs.StatFiles(ctx, h, src); err != nil {
				return nil, err
			} else if st[src].Type != "directory" {
				return nil, fmt.Errorf("bind %s: no such directory", src)
			}
		}
		// rslave: mounts made on the host later appear inside, while
		// whatever the chroot mounts or unmounts stays inside.
		c := modules.Change{Summary: fmt.Sprintf("bind %s into the root", src)}
		s := step{}
		if !slices.Contains(fhsDirs, strings.TrimPrefix(src, "/")) {
			s.cmds = append(s.cmds, c.Cmd("mkdir", "-p", "--", dst))
		}
		s.cmds = append(s.cmds, c.Cmd("mount", "--rbind", src, dst), c.Cmd("mount", "--make-rslave", dst))
		add(c, s)
	}

	// The Nix sandbox cannot work in a chroot (pivot_root and namespaces
	// fail there): it goes off in the store's nix.conf, as the recipes do.
	for _, conf := range sys.nixConfs {
		text, err := h.ReadFile(ctx, m.in(conf))
		if err != nil {
			return nil, err
		}
		if patched := noSandbox(string(text)); patched != string(text) {
			c := modules.Change{Summary: fmt.Sprintf("turn the Nix sandbox off in %s", conf), Before: string(text), After: patched}
			add(c, step{cmds: []transport.Cmd{c.Cmd("sed", "-i", "-e", sandboxSed, "-e", buildUsersSed, "--", m.in(conf))}})
		}
	}

	initText, err := h.ReadFile(ctx, m.in(sys.init))
	if err != nil {
		return nil, err
	}
	patched, err := patchInit(string(initText), sys.bash)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sys.init, err)
	}
	if c, s, err := m.planFile(ctx, h, InitCopy, patched, 0o755, fmt.Sprintf("copy %s with `exec systemd` replaced by `exec %s`", sys.init, sys.bash)); err != nil {
		return nil, err
	} else if s != nil {
		add(c, *s)
	}

	if c, s, err := m.planFile(ctx, h, transport.ChrootEnvFile, EnvFile(), 0o644, "write the environment of `chroot:` tasks"); err != nil {
		return nil, err
	} else if s != nil {
		add(c, *s)
	}

	current, _ := h.Probe(ctx, transport.Cmd{Args: []string{"readlink", "--", m.in("/run/current-system")}})
	if strings.TrimSpace(string(current.Stdout)) != sys.system {
		c := modules.Change{Summary: "run the system's init once (activation: /etc, users, /run/current-system), with a shell in place of systemd"}
		cmd := c.Cmd("chroot", a.Root, InitCopy)
		cmd.Stdin = strings.NewReader("") // the shell it ends in reads nothing and exits
		add(c, step{cmds: []transport.Cmd{cmd}, stream: true})
	}

	resolv, err := h.ReadFile(ctx, "/etc/resolv.conf")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if len(resolv) > 0 {
		// After the init: activation may write its own.
		if c, s, err := m.planFile(ctx, h, "/etc/resolv.conf", string(resolv), 0o644, "copy the rescue's /etc/resolv.conf into the root"); err != nil {
			return nil, err
		} else if s != nil {
			add(c, *s)
		}
	}
	return &modules.Plan{Changes: changes, Output: out, Data: p}, nil
}

func (m *module) fhsPaths() []string {
	paths := make([]string, 0, len(fhsDirs)+1)
	for _, d := range fhsDirs {
		paths = append(paths, m.in(d))
	}
	return append(paths, m.in("bin/sh"))
}

// planFile plans writing content to p inside the root unless it is there
// as a regular file already; a link there (activation makes some) is
// replaced.
func (m *module) planFile(ctx context.Context, h modules.ReadOnlyHost, p, content string, mode fs.FileMode, summary string) (modules.Change, *step, error) {
	dest := m.in(p)
	var before string
	st, err := hostfs.StatFiles(ctx, h, dest)
	if err != nil {
		return modules.Change{}, nil, err
	}
	if cur, ok := st[dest]; ok && cur.Type == "regular file" {
		b, err := h.ReadFile(ctx, dest)
		if err != nil {
			return modules.Change{}, nil, err
		}
		if string(b) == content {
			return modules.Change{}, nil, nil
		}
		before = string(b)
	}
	if summary == "" {
		summary = "write " + p
	}
	c := modules.Change{Summary: fmt.Sprintf("%s (%s inside the root)", summary, p), Before: before, After: content}
	return c, &step{upload: &upload{dest: dest, content: content, mode: mode}}, nil
}

func (m *module) Apply(ctx context.Context, h modules.Host, pl *modules.Plan) (modules.Output, error) {
	p, err := modkit.PlanData[*plan](pl)
	if err != nil {
		return nil, err
	}
	if p.unresolved {
		again, err := m.Check(ctx, h)
		if err != nil {
			return nil, err
		}
		if p, err = modkit.PlanData[*plan](again); err != nil || p.unresolved {
			return nil, fmt.Errorf("no NixOS system in %s: unpack the ISO's store there first (unsquash)", m.in("/nix/store"))
		}
		for _, c := range again.Changes {
			h.Log("planned now that the store is there: %s", c.Summary)
		}
		pl = again
	}
	for _, s := range p.steps {
		if s.upload != nil {
			if err := h.Upload(ctx, s.upload.dest, strings.NewReader(s.upload.content), s.upload.mode); err != nil {
				return nil, fmt.Errorf("write %s: %w", s.upload.dest, err)
			}
		}
		for _, cmd := range s.cmds {
			var progress *fetch.ProgressLog
			if s.stream {
				progress = fetch.NewProgressLog(h.Log, everyLine)
				cmd.Stdout, cmd.Stderr = progress, progress
			}
			_, err := h.Run(ctx, cmd)
			if progress != nil {
				progress.Flush()
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return pl.Output, nil
}

// checkAbsent plans unmounting everything under root, the last mounted
// first; root itself only when it is a bind of a directory (the one
// present makes), never the partition mounted there.
func (m *module) checkAbsent(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	a := m.args
	mounts, err := hostfs.Mounts(ctx, h)
	if err != nil {
		return nil, err
	}
	var targets []string
	for i := len(mounts) - 1; i >= 0; i-- {
		mt := mounts[i]
		switch {
		case mt.Target == a.Root && mt.FSRoot != "/" && mt.FSRoot != "":
			targets = append(targets, mt.Target)
		case mt.Target != a.Root && hostfs.Under(mt.Target, a.Root) && !slices.Contains(targets, mt.Target):
			targets = append(targets, mt.Target)
		}
	}
	// umount -R takes a whole subtree: one per outermost mount suffices.
	var tops []string
	for _, t := range targets {
		nested := slices.ContainsFunc(targets, func(o string) bool { return o != t && hostfs.Under(t, o) })
		if !nested {
			tops = append(tops, t)
		}
	}
	out := modules.Output{"root": a.Root}
	if len(tops) == 0 {
		return &modules.Plan{Output: out}, nil
	}
	c := modules.Change{Summary: fmt.Sprintf("unmount everything under %s (%d mounts)", a.Root, len(targets))}
	var cmds []transport.Cmd
	for _, t := range tops {
		// An unmount under a shared bind would reach the host's own mount.
		if slices.ContainsFunc(mounts, func(s hostfs.MountState) bool { return s.Shared() && hostfs.Under(s.Target, t) }) {
			cmds = append(cmds, c.Cmd("mount", "--make-rslave", t))
		}
		cmds = append(cmds, c.Cmd("umount", "-R", "--", t))
	}
	return &modules.Plan{Changes: []modules.Change{c}, Output: out, Data: &plan{steps: []step{{cmds: cmds}}}}, nil
}

// system is what the store of the root holds, as store paths.
type system struct {
	system, init, bash string
	nixConfs           []string
}

// findSystem looks for the NixOS system in the root's store: the one
// *-nixos-system-* path with an init, the bash its init runs with, and
// the store's nix.conf files. nil when the store is empty or missing.
func (m *module) findSystem(ctx context.Context, h modules.ReadOnlyHost) (*system, error) {
	store := m.in("/nix/store")
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"find", store, "-mindepth", "1", "-maxdepth", "2",
		"(", "-path", store + "/*-nixos-system-*/init", "-o", "-path", store + "/*-nix.conf", ")", "-type", "f"}})
	if err != nil {
		var exit *transport.ExitError
		if errors.As(err, &exit) && strings.Contains(string(res.Stderr), "No such file") {
			return nil, nil
		}
		return nil, fmt.Errorf("look for the NixOS system in %s: %w", store, err)
	}
	s := &system{}
	var inits []string
	for _, line := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
		if line == "" {
			continue
		}
		p := "/nix/store/" + strings.TrimPrefix(line, store+"/")
		if strings.HasSuffix(p, "/init") {
			inits = append(inits, p)
		} else {
			s.nixConfs = append(s.nixConfs, p)
		}
	}
	slices.Sort(inits)
	slices.Sort(s.nixConfs)
	switch len(inits) {
	case 0:
		entries, _ := h.Probe(ctx, transport.Cmd{Args: []string{"find", store, "-mindepth", "1", "-maxdepth", "1", "-print", "-quit"}})
		if len(strings.TrimSpace(string(entries.Stdout))) == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("%s holds no NixOS system (no */nix/store/*-nixos-system-*/init): is it the store of a NixOS ISO?", store)
	case 1:
	default:
		return nil, fmt.Errorf("%s holds several NixOS systems, which one to boot is unclear: %s", store, strings.Join(inits, ", "))
	}
	s.init = inits[0]
	s.system = path.Dir(s.init)
	text, err := h.ReadFile(ctx, m.in(s.init))
	if err != nil {
		return nil, err
	}
	s.bash, err = interpreter(string(text))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.init, err)
	}
	st, err := hostfs.StatFiles(ctx, h, m.in(s.bash))
	if err != nil {
		return nil, err
	}
	if _, ok := st[m.in(s.bash)]; !ok {
		return nil, fmt.Errorf("%s runs with %s, which is not in the store under %s", s.init, s.bash, m.args.Root)
	}
	return s, nil
}

// interpreter reads a script's #! line: stage 2's init runs with the
// system's bash, the one the recipes look for.
func interpreter(script string) (string, error) {
	first, _, _ := strings.Cut(script, "\n")
	if !strings.HasPrefix(first, "#!") {
		return "", errors.New("not a script (no #! line)")
	}
	f := strings.Fields(strings.TrimPrefix(first, "#!"))
	if len(f) == 0 || !strings.HasPrefix(f[0], "/nix/store/") {
		return "", fmt.Errorf("interpreter %q is not in the store", first)
	}
	return f[0], nil
}

// patchInit replaces the line that starts systemd, the last `exec …systemd…`
// (`exec systemd` in older releases, `exec @systemdExecutable@ "$@"` in
// newer ones), with `exec bash`, keeping whatever environment the line
// before sets for it.
func patchInit(script, bash string) (string, error) {
	lines := strings.Split(script, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		t := strings.TrimSpace(lines[i])
		if strings.HasPrefix(t, "exec ") && strings.Contains(t, "systemd") {
			indent := lines[i][:strings.Index(lines[i], "exec ")]
			lines[i] = indent + "exec " + bash
			return strings.Join(lines, "\n"), nil
		}
	}
	return "", errors.New("no `exec systemd` line to replace: not a NixOS stage 2 init?")
}

// The sed expressions that turn the sandbox and the build users off.
const (
	sandboxSed    = `s/^sandbox = .*/sandbox = false/`
	buildUsersSed = `s/^build-users-group = .*/build-users-group =/`
)

// noSandbox is what the sed expressions make of a nix.conf.
func noSandbox(conf string) string {
	lines := strings.Split(conf, "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "sandbox = "):
			lines[i] = "sandbox = false"
		case strings.HasPrefix(l, "build-users-group = "):
			lines[i] = "build-users-group ="
		}
	}
	return strings.Join(lines, "\n")
}

// EnvFile is the environment the commands of `chroot:` tasks start with:
// the NixOS system's tools, its channels, and Nix without its sandbox
// (NIX_CONFIG covers Nix versions whose nix.conf lacks the line).
func EnvFile() string {
	return `# Written by nixbook's chroot module. Commands of tasks with ` + "`chroot:`" + ` source it.
export PATH=/run/wrappers/bin:/root/.nix-profile/bin:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin
export NIX_PATH=nixpkgs=/nix/var/nix/profiles/per-user/root/channels/nixos:nixos-config=/etc/nixos/configuration.nix:/nix/var/nix/profiles/per-user/root/channels
export HOME=/root USER=root LOGNAME=root
export LANG=C.UTF-8 LOCALE_ARCHIVE=/run/current-system/sw/lib/locale/locale-archive
export TMPDIR=/tmp
export SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt NIX_SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
export NIX_CONFIG='sandbox = false
build-users-group ='
`
}
