// Package kexec is the `kexec` module: from the rescue system it boots the
// nix-community NixOS installer by kexec, as the 2024 procedure does. The
// tarball is downloaded to a file and verified (never piped into tar, the
// cause of truncated initrds), unpacked, and its kexec/run started; the
// module then waits for the host to come back as the installer with a new
// boot id and the same host key, which kexec/run carries over.
package kexec

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/nixbook/nixbook/internal/clock"
	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/boot"
	"github.com/nixbook/nixbook/internal/modules/internal/fetch"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
	"github.com/nixbook/nixbook/internal/transport"
)

// DefaultURL is the image the 2024 OVH procedure found working: newer
// images hung on its server. The release asset is rebuilt in place now and
// then, so its checksum is given by the user (kexec_sha256) rather than
// pinned here.
const DefaultURL = "https://github.com/nix-community/nixos-images/releases/download/nixos-22.11/nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz"

// bootMessage is what kexec/run prints once the kernel is loaded.
const bootMessage = "machine will boot into nixos"

// Args are the arguments of `kexec`.
type Args struct {
	URL        string          `yaml:"url" default:"https://github.com/nix-community/nixos-images/releases/download/nixos-22.11/nixos-kexec-installer-noninteractive-x86_64-linux.tar.gz" doc:"the nixos-images kexec installer tarball; the default is the nixos-22.11 image the 2024 OVH procedure found working where newer ones hung"`
	SHA256     string          `yaml:"sha256" doc:"the tarball's sha256, 64 hex digits; required unless checksum: false is written out"`
	Checksum   bool            `yaml:"checksum" default:"true" doc:"verify the sha256; false skips the check"`
	Dest       string          `yaml:"dest" default:"/root/kexec" doc:"directory the tarball is downloaded to and unpacked in (kexec/run ends up in dest/kexec/run)"`
	Timeout    modkit.Duration `yaml:"timeout" default:"10m" doc:"how long the host may take to come back as the installer"`
	MinMemory  Size            `yaml:"min_memory" default:"1.5GiB" doc:"refuse to kexec with less RAM than this: the installer lives in memory, and swap does not survive kexec"`
	ExtraFlags string          `yaml:"extra_flags" doc:"passed to kexec/run as --kexec-extra-flags, e.g. --kexec-syscall-auto, which helps some kernels and hangs others"`
	Tool       string          `yaml:"tool" default:"auto" doc:"download with curl, wget, or auto (curl when the host has it)"`
	KeepLease  bool            `yaml:"keep_lease" default:"true" doc:"when the rescue's IPv4 address is a DHCP lease, make it and the default route static before the kexec, so that the installer keeps them: nixos-images restores static addresses and asks DHCP again for leases, which may hand out another address; false leaves them leases"`
}

// Spec is the `kexec` module.
var Spec = modules.Spec{
	Name:    "kexec",
	Summary: "Boot the NixOS kexec installer from the rescue system and wait until it answers with the same host key.",
	Args:    Args{},
	Example: `- name: Boot the NixOS installer
  kexec:
    url: "{{ kexec_url }}"
    sha256: "{{ kexec_sha256 }}"
    timeout: 10m
`,
	New: modkit.New(func(a Args) (modules.Module, error) {
		if err := a.validate(); err != nil {
			return nil, err
		}
		return &module{args: a}, nil
	}),
}

func (a *Args) validate() error {
	u, err := url.Parse(a.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ftp") {
		return fmt.Errorf("url %q: want an http, https or ftp URL", a.URL)
	}
	switch {
	case a.Checksum && a.SHA256 == "":
		return fmt.Errorf("sha256 is required: give the sha256 of %s (sha256sum of the downloaded tarball), or write checksum: false to skip the check", path.Base(u.Path))
	case !a.Checksum && a.SHA256 != "":
		return errors.New("sha256 is given but checksum: false says not to check it: drop one of them")
	case a.Checksum:
		if a.SHA256, err = hostfs.NormalizeSHA256(a.SHA256); err != nil {
			return err
		}
	}
	if !path.IsAbs(a.Dest) {
		return fmt.Errorf("dest %q: want an absolute path", a.Dest)
	}
	a.Dest = path.Clean(a.Dest)
	if a.Dest == "/" {
		return errors.New("dest: / is no place to unpack a tarball; use a directory such as /root/kexec")
	}
	if a.Timeout <= 0 {
		return errors.New("timeout must be positive")
	}
	switch a.Tool {
	case "auto", "curl", "wget":
	default:
		return fmt.Errorf("tool %q: want auto, curl or wget", a.Tool)
	}
	return nil
}

type module struct {
	args  Args
	clock clock.Clock // zero: real time
}

type plan struct {
	bootID   string
	download *fetch.Steps
	unpack   transport.Cmd
	run      transport.Cmd
	// uplink is the rescue's network, which the installer must come up
	// with; restore puts it back when it does not. ok is false when the
	// rescue's facts show none.
	uplink   uplink
	uplinkOK bool
	restore  restore
	// pin makes the rescue's DHCP lease static before the kexec: ip -4
	// -batch lines; empty when the address is static already (or
	// keep_lease: false).
	pin []string
}

func (m *module) tarball() string { return path.Join(m.args.Dest, "kexec.tar.gz") }
func (m *module) runPath() string { return path.Join(m.args.Dest, "kexec", "run") }

func (m *module) Check(ctx context.Context, h modules.ReadOnlyHost) (*modules.Plan, error) {
	a := m.args
	installer, pretty, err := InInstaller(ctx, h)
	if err != nil {
		return nil, err
	}
	if installer {
		return &modules.Plan{Output: modules.Output{"installer": true}, Message: "already in the NixOS installer (" + pretty + ")"}, nil
	}
	if err := m.enoughMemory(ctx, h); err != nil {
		return nil, err
	}
	id, err := h.ReadFile(ctx, boot.IDPath)
	if err != nil {
		return nil, fmt.Errorf("read boot id: %w", err)
	}
	p := &plan{bootID: strings.TrimSpace(string(id))}

	// The tarball holds a kernel and an initrd compressed already: it
	// unpacks to about its own size again, beside itself.
	d := fetch.Download{URL: a.URL, Dest: m.tarball(), Unpacked: func(size int64) int64 { return size }}
	if a.Checksum {
		d.SHA256 = a.SHA256
	}
	file, err := d.Inspect(ctx, h)
	if err != nil {
		return nil, err
	}
	var changes []modules.Change
	if !d.Complete(file) {
		if d.Tool, err = fetch.FindTool(ctx, h, a.Tool); err != nil {
			return nil, err
		}
		c := modules.Change{Summary: fmt.Sprintf("download %s to %s with %s", a.URL, d.Dest, d.Tool)}
		if !a.Checksum {
			c.Summary += ", unverified (checksum: false)"
		}
		p.download = d.Plan(&c, file)
		changes = append(changes, c)
	}

	p.uplink, p.uplinkOK = rescueUplink(h.Facts())
	if p.uplinkOK && p.uplink.lease && a.KeepLease {
		c := modules.Change{Summary: fmt.Sprintf("make the rescue's DHCP lease %s on %s static, with its default route, so that the installer keeps it (nixos-images restores static addresses and asks DHCP again for leases, which may hand out another address)", p.uplink.v4, p.uplink.nic)}
		p.pin = planPin(&c, p.uplink)
		changes = append(changes, c)
	}

	// Unpacked afresh every time: kexec/run appends the host's keys and
	// network to its initrd, so a second run must not start from the first's.
	c := modules.Change{Summary: fmt.Sprintf("unpack the installer into %s and start kexec/run (the host leaves in 6 s)", a.Dest)}
	p.unpack = c.Cmd("tar", "-xzf", m.tarball(), "-C", a.Dest)
	args := []string{"setsid", "--wait", m.runPath()}
	if a.ExtraFlags != "" {
		args = append(args, "--kexec-extra-flags", a.ExtraFlags)
	}
	p.run = transport.Cmd{Args: args, Env: map[string]string{"TMPDIR": a.Dest}}
	c.Commands = append(c.Commands, p.run.Line())
	changes = append(changes, c)
	changes = append(changes, modules.Change{
		Summary: fmt.Sprintf("wait up to %s for the NixOS installer on a new boot, with the same host key (boot %s now)", a.Timeout, p.bootID),
	})
	if p.uplinkOK {
		c := modules.Change{Summary: fmt.Sprintf("if the installer's network comes up otherwise than the rescue's (a new DHCP address, no default route, no IPv6), reach it at its other address and give %s the rescue's network again", p.uplink.nic)}
		p.restore = planRestore(&c, p.uplink)
		changes = append(changes, c)
	}
	out := modules.Output{"url": a.URL, "dest": a.Dest}
	if d.SHA256 != "" {
		out["sha256"] = d.SHA256
	}
	return &modules.Plan{Changes: changes, Reboots: true, Output: out, Data: p}, nil
}

func (m *module) Apply(ctx context.Context, h modules.Host, pl *modules.Plan) (modules.Output, error) {
	p, err := modkit.PlanData[*plan](pl)
	if err != nil {
		return nil, err
	}
	a := m.args
	begin := m.clock.Now()
	out := modules.Output{}
	for k, v := range pl.Output {
		out[k] = v
	}
	if p.download != nil {
		if _, err := p.download.Run(ctx, h); err != nil {
			var space *fetch.SpaceError
			if errors.As(err, &space) {
				return nil, fmt.Errorf("refused before the kexec, the host stays in the rescue system: the kexec installer does not fit: %w. The rescue runs from a RAM disk, and the installer it boots lives in RAM too: use a smaller image (kexec url and sha256), or install this server through the rescue system with the ISO path (install-iso.yml)", err)
			}
			return nil, err
		}
	}
	if len(p.pin) > 0 {
		cmd := batch("-4")
		cmd.Stdin = strings.NewReader(strings.Join(p.pin, "\n") + "\n")
		if _, err := h.Run(ctx, cmd); err != nil {
			return nil, fmt.Errorf("make the rescue's DHCP lease static before the kexec (%s): %w", strings.Join(p.pin, "; "), err)
		}
		h.Log("the rescue's DHCP lease %s is static now: the installer keeps it", p.uplink.v4)
		out["lease_kept"] = p.uplink.v4.String()
	}
	if _, err := h.Run(ctx, p.unpack); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", m.tarball(), err)
	}

	h.Log("starting %s on boot %s", m.runPath(), p.bootID)
	progress := fetch.NewProgressLog(h.Log, time.Nanosecond)
	run := p.run
	run.Stdin = strings.NewReader("")
	run.Stdout, run.Stderr = progress, progress
	res, err := h.Run(ctx, run)
	progress.Flush()
	if ctx.Err() != nil {
		return nil, m.interrupted(ctx, h, true)
	}
	if err != nil {
		var exit *transport.ExitError
		if errors.As(err, &exit) && exit.ExitCode >= 0 || ctx.Err() != nil {
			// kexec/run prints why (kexec's error, the end of dmesg) on either stream.
			said := lastLines(string(res.Stdout)+string(res.Stderr), 5)
			return nil, fmt.Errorf("kexec/run failed, the host stays in the rescue system: %w; it said: %s", err, said)
		}
		// The session may die with the old kernel: that is the kexec.
		h.Log("connection lost while kexec/run was starting, as a kexec does: %v", err)
	} else if !strings.Contains(string(res.Stdout)+string(res.Stderr), bootMessage) {
		h.Log("kexec/run exited without saying %q; waiting for the installer anyway", bootMessage)
	}

	var last, answeredAt string
	elsewhere := p.elsewhere(h.Reach().Dial)
	_, err = boot.WaitNew(ctx, h, boot.Options{
		Timeout:   a.Timeout.D(),
		Sleep:     time.Second,
		MaxSleep:  5 * time.Second,
		Clock:     m.clock,
		Elsewhere: elsewhere,
		Answered:  func(addr string) { answeredAt = addr },
		// Not NewSystem: the installer serves the rescue's host keys, and
		// any other key is someone else.
	}, p.bootID, func(ctx context.Context) (bool, error) {
		installer, pretty, err := InInstaller(ctx, h)
		if err != nil {
			return false, err
		}
		last = pretty
		if !installer {
			return false, fmt.Errorf("new boot, but not the NixOS installer: %s", pretty)
		}
		return true, nil
	})
	var changed *hostkeys.ChangedError
	switch {
	case errors.As(err, &changed):
		return nil, fmt.Errorf("came back from kexec with another host key, refused: the kexec installer keeps the rescue's keys, so this may not be your server (%w)", err)
	case err != nil && ctx.Err() != nil:
		return nil, m.interrupted(ctx, h, false)
	case err != nil && len(elsewhere) > 0:
		return nil, fmt.Errorf("did not come back as the NixOS installer within %s, neither at %s nor at %s (%w). Either kexec hung, or the installer's network came up otherwise than the rescue's on both IPv4 and IPv6 (a new DHCP address, no default route: nixos-anywhere #112, #415): the server's console (KVM/IPMI) shows it, `ip addr` and `ip route` there say where it is; if it answers at another address, set the host's address in the inventory to it and run again. If it hangs: boot the server into rescue again (the rescue module or the OVH panel), then try another image (kexec url and sha256; nixos-22.11 is the one known to work on OVH, extra_flags may help) or install through the rescue system with the ISO path (install-iso.yml)",
			a.Timeout, h.Reach().Dial, strings.Join(elsewhere, ", "), err)
	case err != nil:
		return nil, fmt.Errorf("did not come back as the NixOS installer within %s (%w). kexec hangs with some images on some hardware: boot the server into rescue again (the rescue module or the OVH panel), then try another image (kexec url and sha256; nixos-22.11 is the one known to work on OVH, extra_flags may help) or install through the rescue system with the ISO path (install-iso.yml)",
			a.Timeout, err)
	}
	h.Log("in the NixOS installer: %s", last)
	if err := h.RefreshFacts(ctx); err != nil {
		return nil, fmt.Errorf("gather facts in the installer: %w", err)
	}
	if p.uplinkOK {
		restored, err := m.restoreNetwork(ctx, h, p, answeredAt)
		if err != nil {
			return nil, err
		}
		if restored != "" {
			out["network_restored"] = restored
		}
	}
	out["installer"] = true
	out["elapsed"] = int(m.clock.Now().Sub(begin).Seconds())
	return out, nil
}

// unloadTimeout bounds the kexec -u an interrupted Apply sends: the boot it
// cancels is due a few seconds after kexec/run.
const unloadTimeout = 4 * time.Second

// interrupted is the error of an Apply stopped once kexec/run was started.
// kexec/run loads the installer and schedules its boot a few seconds later,
// detached (setsid, nohup), so the boot happens after nixbook stops unless
// the loaded kernel is unloaded; kexec -u does that. While kexec/run was
// still starting, it may load the kernel after the unload, so the host is
// only said to stay in the rescue system when kexec/run had finished.
func (m *module) interrupted(ctx context.Context, h modules.Host, starting bool) error {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unloadTimeout)
	defer cancel()
	_, err := h.Run(uctx, transport.Cmd{Args: []string{path.Join(m.args.Dest, "kexec", "kexec"), "-u"}})
	switch {
	case err == nil && !starting:
		h.Log("interrupted: the installer's boot was cancelled on the host (kexec -u)")
		return fmt.Errorf("%w: the boot into the installer that kexec/run had scheduled was cancelled (kexec -u); it stays in the rescue system", ctx.Err())
	case err == nil:
		h.Log("interrupted while kexec/run was starting; kexec -u sent")
		return fmt.Errorf("%w while kexec/run was starting: the host may boot the NixOS installer in a few seconds (kexec -u was sent, but kexec/run may have loaded the installer after it); run the playbook again: the kexec module finds the installer or the rescue system", ctx.Err())
	}
	h.Log("interrupted; kexec -u failed: %v", err)
	return fmt.Errorf("%w after kexec/run was started: the host may boot the NixOS installer in a few seconds, or already has (cancelling it with kexec -u failed: %v); run the playbook again: the kexec module finds the installer or the rescue system", ctx.Err(), err)
}

// InInstaller reports whether the host runs a NixOS installer: NixOS with
// VARIANT_ID=installer (what nixos-images set), or NixOS running from a
// root in memory, as older netboot images do without the variant. pretty
// describes the system for messages.
func InInstaller(ctx context.Context, h modules.ReadOnlyHost) (bool, string, error) {
	b, err := h.ReadFile(ctx, "/etc/os-release")
	if err != nil {
		return false, "", fmt.Errorf("read /etc/os-release: %w", err)
	}
	rel := facts.ParseOSRelease(string(b))
	pretty := rel.PrettyName
	if pretty == "" {
		pretty = strings.TrimSpace(rel.ID + " " + rel.VersionID)
	}
	if rel.ID != "nixos" {
		return false, pretty, nil
	}
	if rel.VariantID == "installer" {
		return true, pretty, nil
	}
	root, err := hostfs.InspectMount(ctx, h, "/")
	if err != nil {
		return false, pretty, err
	}
	switch root.FSType {
	case "tmpfs", "rootfs", "ramfs":
		return true, pretty, nil
	}
	return false, pretty, nil
}

// Preflight refuses, before the play reboots the host into the rescue, a
// server with too little RAM for the installer: RAM is the same in every
// system the server boots.
func (m *module) Preflight(ctx context.Context, h modules.ReadOnlyHost) error {
	if h.Facts().OS.ID == "nixos" {
		return nil // the installer, or a NixOS installed already
	}
	return m.enoughMemory(ctx, h)
}

func (m *module) enoughMemory(ctx context.Context, h modules.ReadOnlyHost) error {
	mem, err := memory(ctx, h)
	if err != nil {
		return err
	}
	if mem < int64(m.args.MinMemory) {
		return fmt.Errorf("%s has %s of RAM, the kexec installer needs at least %s (min_memory): it holds itself and its store in memory, and swap does not survive kexec; install this server through the rescue system with the ISO path (install-iso.yml) instead",
			h.Name(), hostfs.FormatBytes(mem), hostfs.FormatBytes(int64(m.args.MinMemory)))
	}
	return nil
}

// memory is the host's RAM in bytes, from facts or /proc/meminfo.
func memory(ctx context.Context, h modules.ReadOnlyHost) (int64, error) {
	if f := h.Facts(); f != nil && f.MemoryMB > 0 {
		return f.MemoryMB << 20, nil
	}
	b, err := h.ReadFile(ctx, "/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read /proc/meminfo: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/meminfo: %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("/proc/meminfo has no MemTotal")
}

// lastLines joins the last n non-empty lines of s.
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
