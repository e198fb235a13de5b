package install

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/transport"
)

// channelsFile is root's list of channels; channelDir is what
// `nix-channel --update` unpacks the `nixos` channel into.
const (
	channelsFile = "/root/.nix-channels"
	channelDir   = "/nix/var/nix/profiles/per-user/root/channels/" + ChannelName
)

type systemPlan struct {
	add, update *transport.Cmd
	install     transport.Cmd
	mkdir       transport.Cmd
	config      string // root/etc/nixos/configuration.nix
	marker      string // what MarkerPath will hold
	markerPath  string

	// A flake's system instead of configuration.nix: the flake, the files
	// of a local one, and the evaluation that guards against a lock-out.
	flake *flakeRef
	files []flakeFile
	eval  transport.Cmd
	// local: the system is built on the controller (build_on: local).
	local *localBuild
}

func (m *module) configPath() string { return path.Join(m.args.Root, "etc/nixos/configuration.nix") }

// checkSystem plans the channel and nixos-install. In a dry run on a fresh
// host the configuration (and, in the ISO path, the chroot) is not there
// yet, since the tasks that make them did not run: that is planned for, and
// Apply looks again.
func (m *module) checkSystem(ctx context.Context, h modules.ReadOnlyHost) (*systemPlan, []modules.Change, string, error) {
	if m.args.Flake != "" {
		return m.checkFlake(ctx, h)
	}
	root := m.args.Root
	sp := &systemPlan{config: m.configPath(), markerPath: path.Join(root, MarkerPath)}
	note := ""
	_, err := h.ReadFile(ctx, sp.config)
	switch {
	case err == nil:
		sums, err := configSums(ctx, h, root)
		if err != nil {
			return nil, nil, "", err
		}
		sp.marker = markerText(m.args.Channel, sums)
		system := systemProfile(ctx, h, root)
		recorded, err := h.ReadFile(ctx, sp.markerPath)
		if err != nil && !absent(err) {
			return nil, nil, "", err
		}
		if system != "" && string(recorded) == sp.marker {
			return nil, nil, fmt.Sprintf("%s already holds the system built from its configuration (%s)", root, system), nil
		}
	case absent(err):
		note = fmt.Sprintf("%s is not there yet (nixos_config writes it before this step)", sp.config)
	default:
		return nil, nil, "", err
	}

	c := modules.Change{Summary: fmt.Sprintf("install NixOS from %s into %s", m.args.Channel, root)}
	listed, err := h.ReadFile(ctx, channelsFile)
	if err != nil && !absent(err) {
		return nil, nil, "", err
	}
	if !hasChannel(string(listed), m.args.Channel, ChannelName) {
		cmd := c.Cmd("nix-channel", "--add", m.args.Channel, ChannelName)
		sp.add = &cmd
	}
	if sp.add != nil || !exists(ctx, h, channelDir) {
		cmd := c.Cmd("nix-channel", "--update", ChannelName)
		sp.update = &cmd
	}
	argv := append([]string{"nixos-install", "--root", root, "--no-root-passwd"}, m.args.InstallArgs...)
	sp.install = c.Cmd(argv...)
	sp.mkdir = c.Cmd("mkdir", "-p", path.Dir(sp.markerPath))
	c.Summary += fmt.Sprintf(", then record the configuration's checksums in %s", sp.markerPath)
	files, err := m.filesChanges()
	if err != nil {
		return nil, nil, "", err
	}
	return sp, append(files, c), note, nil
}

// absent reports an error that means "not there": a missing file, or a
// chroot that does not exist yet.
func absent(err error) bool {
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	var exit *transport.ExitError
	return errors.As(err, &exit)
}

func exists(ctx context.Context, h modules.ReadOnlyHost, p string) bool {
	_, err := h.Probe(ctx, transport.Cmd{Args: []string{"test", "-e", p}})
	return err == nil
}

// systemProfile is the store path root's system profile points to, "" when
// there is none.
func systemProfile(ctx context.Context, h modules.ReadOnlyHost, root string) string {
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"readlink", path.Join(root, "nix/var/nix/profiles/system")}})
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(res.Stdout))
}

// configSums lists root/etc/nixos's files with their checksums, paths
// relative to root, in the order of the paths.
func configSums(ctx context.Context, h modules.ReadOnlyHost, root string) ([]string, error) {
	dir := path.Join(root, "etc/nixos")
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"find", dir, "-type", "f"}})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var files []string
	for _, f := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
		if f != "" {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, nil
	}
	res, err = h.Probe(ctx, transport.Cmd{Args: append([]string{"sha256sum", "--"}, files...)})
	if err != nil {
		return nil, fmt.Errorf("checksum %s: %w", dir, err)
	}
	byFile := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
		if sum, file, ok := strings.Cut(line, "  "); ok {
			byFile[file] = sum
		}
	}
	sums := make([]string, 0, len(files))
	for _, f := range files {
		rel := strings.TrimPrefix(strings.TrimPrefix(f, root), "/")
		sums = append(sums, byFile[f]+"  "+rel)
	}
	return sums, nil
}

func markerText(channel string, sums []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by nixbook after nixos-install succeeded.\nchannel %s\n", channel)
	for _, s := range sums {
		b.WriteString(s + "\n")
	}
	return b.String()
}

// hasChannel reports whether ~/.nix-channels maps name to url.
func hasChannel(listed, url, name string) bool {
	for _, line := range strings.Split(listed, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[1] == name {
			return strings.TrimRight(f[0], "/") == strings.TrimRight(url, "/")
		}
	}
	return false
}

func (m *module) applySystem(ctx context.Context, h modules.Host, sp *systemPlan, out modules.Output) error {
	if sp.flake != nil {
		return m.applyFlake(ctx, h, sp, out)
	}
	if _, err := h.ReadFile(ctx, sp.config); err != nil {
		if absent(err) {
			return fmt.Errorf("%s does not exist: write the configuration first (the nixos_config module); nothing was installed", sp.config)
		}
		return err
	}
	for _, cmd := range []*transport.Cmd{sp.add, sp.update} {
		if cmd == nil {
			continue
		}
		if _, err := h.Run(ctx, *cmd); err != nil {
			return fmt.Errorf("%s: %w", cmd.Line(), err)
		}
	}
	if err := m.placeFiles(ctx, h); err != nil {
		return err
	}
	if err := runInstall(ctx, h, sp.install, sp.config); err != nil {
		return err
	}
	// The checksums Check saw are the configuration just installed; when
	// Check found none (the configuration came after it), take them now.
	marker := sp.marker
	if marker == "" {
		sums, err := configSums(ctx, h, m.args.Root)
		if err != nil {
			return err
		}
		marker = markerText(m.args.Channel, sums)
	}
	if _, err := h.Run(ctx, sp.mkdir); err != nil {
		return fmt.Errorf("%s: %w", sp.mkdir.Line(), err)
	}
	if err := h.Upload(ctx, sp.markerPath, strings.NewReader(marker), 0o644); err != nil {
		return fmt.Errorf("record the install in %s: %w", sp.markerPath, err)
	}
	out["installed"] = true
	out["channel"] = m.args.Channel
	if system := systemProfile(ctx, h, m.args.Root); system != "" {
		out["system"] = system
	}
	return nil
}

// placeFiles copies extra_files and the generated host key into root,
// before nixos-install.
func (m *module) placeFiles(ctx context.Context, h modules.Host) error {
	if m.args.ExtraFiles != "" {
		if err := m.copyExtraFiles(ctx, h); err != nil {
			return err
		}
	}
	if m.args.GenerateHostKey {
		if err := m.installHostKey(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

// filesChanges describes placeFiles in a plan; it fails when extra_files is
// not a directory.
func (m *module) filesChanges() ([]modules.Change, error) {
	var out []modules.Change
	if m.args.ExtraFiles != "" {
		files, err := extraFiles(m.args.ExtraFiles)
		if err != nil {
			return nil, err
		}
		c := modules.Change{
			Summary:   fmt.Sprintf("copy %s (%d entries) into %s, owners and modes kept", m.args.ExtraFiles, len(files), m.args.Root),
			Sensitive: true,
		}
		for _, s := range extraFileSteps(m.args.Root, files) {
			if s.upload == nil {
				c.Commands = append(c.Commands, s.cmd.Line())
			}
		}
		out = append(out, c)
	}
	if m.args.GenerateHostKey {
		c := modules.Change{Summary: fmt.Sprintf("install the SSH host key nixbook keeps for this host (generated on the controller the first time) as %s", path.Join(m.args.Root, hostKeyFile))}
		c.Cmd("mkdir", "-p", path.Dir(path.Join(m.args.Root, hostKeyFile)))
		out = append(out, c)
	}
	return out, nil
}

// runInstall runs nixos-install and fails when it did or when its boot
// loader step did; where names what to fix.
func runInstall(ctx context.Context, h modules.Host, install transport.Cmd, where string) error {
	h.Log("running nixos-install; its output follows in this log")
	res, err := h.Run(ctx, install)
	failed := BootLoaderErrors(string(res.Stdout) + "\n" + string(res.Stderr))
	if err != nil {
		msg := fmt.Sprintf("nixos-install failed: %v", err)
		if len(failed) > 0 {
			msg += "; boot loader: " + strings.Join(failed, "; ")
		}
		return errors.New(msg)
	}
	if len(failed) > 0 {
		return fmt.Errorf("nixos-install exited 0 but its boot loader step failed, so the disk would not boot: %s; fix boot.loader in %s and run again (nothing was rebooted)",
			strings.Join(failed, "; "), where)
	}
	return nil
}

// applyFlake places a local flake, refuses a system that would lock the
// user out, installs the flake's system and records it.
func (m *module) applyFlake(ctx context.Context, h modules.Host, sp *systemPlan, out modules.Output) error {
	if sp.flake.dir != "" {
		if err := m.placeFlake(ctx, h, sp); err != nil {
			return err
		}
	}
	if sp.local == nil {
		if err := m.guardFlake(ctx, h, sp); err != nil {
			return err
		}
	}
	if err := m.placeFiles(ctx, h); err != nil {
		return err
	}
	if sp.local != nil {
		if err := m.buildLocally(ctx, h, sp); err != nil {
			return err
		}
	}
	if err := runInstall(ctx, h, sp.install, "nixosConfigurations."+sp.flake.name+" of "+sp.flake.ref); err != nil {
		return err
	}
	if _, err := h.Run(ctx, sp.mkdir); err != nil {
		return fmt.Errorf("%s: %w", sp.mkdir.Line(), err)
	}
	if err := h.Upload(ctx, sp.markerPath, strings.NewReader(sp.marker), 0o644); err != nil {
		return fmt.Errorf("record the install in %s: %w", sp.markerPath, err)
	}
	out["installed"] = true
	out["flake"] = sp.flake.String()
	if system := systemProfile(ctx, h, m.args.Root); system != "" {
		out["system"] = system
	}
	return nil
}

// bootLoaderFailures are lines nixos-install prints when the boot loader
// could not be installed; older releases exit 0 after some of them.
var bootLoaderFailures = []*regexp.Regexp{
	regexp.MustCompile(`installation of GRUB on .* failed`),
	regexp.MustCompile(`grub-install(\.real)?: error: `),
	regexp.MustCompile(`Died at .*install-grub\.pl`),
	regexp.MustCompile(`(?i)failed to install (the )?boot ?loader`),
	regexp.MustCompile(`(?i)bootctl.*(failed|error)`),
	regexp.MustCompile(`^error: `),
}

// BootLoaderErrors returns the lines of nixos-install's output that report
// a failed boot loader installation (or any `error: ` line).
func BootLoaderErrors(output string) []string {
	var found []string
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for _, re := range bootLoaderFailures {
			if re.MatchString(line) {
				found = append(found, line)
				break
			}
		}
	}
	return found
}
