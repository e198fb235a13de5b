package sim

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixbook/nixbook/sim/hostinit"
	"github.com/nixbook/nixbook/sim/internal/devtree"
	"github.com/nixbook/nixbook/sim/nixeval"
	"github.com/nixbook/nixbook/sim/simstate"
)

// grubRecord is where the payload's nixos-install notes the devices whose
// GRUB reads a /boot, relative to that /boot.
const grubRecord = "grub/nixbook-sim-devices"

// grubBoot is a /boot a GRUB reads: its file system, the devices
// nixos-install put a GRUB reading it on, and the files its menu loads
// that the file system lacks.
type grubBoot struct {
	fs      *installedFS
	devices []string
	missing []string
}

// onDisk says whether one of the boot's GRUBs is on a disk of the host.
func (gb grubBoot) onDisk(h nixeval.Host) bool {
	for _, d := range gb.devices {
		if slices.Contains(h.Disks, d) || slices.Contains(h.Disks, h.DiskAliases[d]) {
			return true
		}
	}
	return false
}

// findBoots finds the /boot file systems GRUB reads among the host's file
// systems: /boot on the root, or a separate one (/boot, /boot-2 of
// mirrored boots). Those on a lost disk are not among them.
func findBoots(root *installedFS, mounted []*installedFS) []grubBoot {
	var out []grubBoot
	for _, m := range mounted {
		dir := m.mount
		if m == root {
			dir = filepath.Join(m.mount, "boot")
		}
		data, err := os.ReadFile(filepath.Join(dir, grubRecord))
		if err != nil {
			continue
		}
		out = append(out, grubBoot{fs: m, devices: strings.Fields(string(data)), missing: menuMissing(m.mount, dir)})
	}
	return out
}

// menuMissing lists the kernel and initrd that GRUB's menu under dir loads
// (paths on the file system mounted at fsRoot) and that are not there.
func menuMissing(fsRoot, dir string) []string {
	cfg, err := os.ReadFile(filepath.Join(dir, "grub/grub.cfg"))
	if err != nil {
		return []string{"grub/grub.cfg"}
	}
	var missing []string
	for _, line := range strings.Split(string(cfg), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[0] != "linux" && fields[0] != "initrd" {
			continue
		}
		file := fields[1]
		if i := strings.Index(file, ")"); strings.HasPrefix(file, "(") && i > 0 {
			file = file[i+1:]
		}
		if resolveIn(fsRoot, file) == "" && !slices.Contains(missing, file) {
			missing = append(missing, file)
		}
	}
	return missing
}

// mountable says whether the machine's kernel can mount a file system to
// look for an installed system.
func mountable(fstype string) bool {
	switch fstype {
	case "ext4", "ext3", "ext2", "xfs", "btrfs":
		return true
	}
	return false
}

// installedFS is a file system of the host's disks mounted read-only on the
// machine while the controller looks at it.
type installedFS struct {
	device string // /dev/loopNpM on the machine
	name   string // sda2 inside the host
	fstype string
	mount  string
}

// prepareDisk boots what is installed on the host's disks. It finds the
// installed root, evaluates its configuration.nix with Nix and asks whether
// that system would come up on this server's network. If it would not, the
// host still boots but stays off the network, and its status says why.
func (h *Host) prepareDisk(ctx context.Context, b *boot) error {
	b.cfg.Hostname = "nixos"
	b.osRelease = "NAME=NixOS\nID=nixos\n"
	mounted, err := h.mountInstalled(ctx)
	var volumes []*luksVolume
	defer func() {
		h.unmountInstalled(mounted)
		// A volume the booted system does not use is let go.
		for _, v := range volumes {
			if v.loop != nil && !h.holdsVolume(v.loop) {
				v.loop.Close()
			}
		}
	}()
	if err != nil {
		return err
	}
	// A root in a LUKS volume is found once the initrd's keys open it.
	volumes, locked := h.unlockLUKS(ctx, mounted)
	for _, v := range volumes {
		if v.fs != nil {
			mounted = append(mounted, v.fs)
		}
	}
	var root, bootFS *installedFS
	for _, m := range mounted {
		if (exists(filepath.Join(m.mount, "etc/nixos/configuration.nix")) || builtFromFlake(m.mount) != "") &&
			(root == nil || exists(filepath.Join(m.mount, "nix/var/nix/profiles/system"))) {
			root = m
		}
	}
	if root == nil {
		if distro := findDistribution(mounted); distro != nil {
			return h.prepareDistribution(b, distro)
		}
	}
	key, err := h.diskHostKey(root)
	if err != nil {
		return err
	}
	b.hostKey = key
	if root == nil {
		b.network, b.cfg.SSHD = false, false
		b.why = "no installed system on the disks (no etc/nixos/configuration.nix on any file system): nothing to boot"
		if len(locked) > 0 {
			var whys []string
			for _, l := range locked {
				whys = append(whys, l.why)
			}
			b.why = "the installed system does not boot: " + strings.Join(whys, "; ")
		}
		b.installed = b.why
		return nil
	}
	var rootVolume *luksVolume
	for _, v := range volumes {
		if v.fs == root {
			rootVolume = v
		}
	}
	// The GRUB that boots is one on a disk the server still has, reading a
	// /boot the server still has, whose menu's kernel is there. The BIOS
	// may start any disk's GRUB: one whose menu loads a missing kernel
	// stops the boot there.
	host := h.evalHost()
	if devices, err := devtree.DevNames(ctx, h.devs.BootDisks()); err == nil {
		host.Devices = devices
	}
	var record, bootWhy []string
	for _, gb := range findBoots(root, mounted) {
		if len(gb.missing) > 0 {
			if gb.onDisk(host) {
				bootWhy = append(bootWhy, fmt.Sprintf("GRUB's menu on /dev/%s loads %s, which that file system lacks", gb.fs.name, strings.Join(gb.missing, " and ")))
			}
			continue
		}
		if bootFS == nil && gb.onDisk(host) {
			bootFS = gb.fs
		}
		record = append(record, gb.devices...)
	}
	if data, err := os.ReadFile(filepath.Join(root.mount, "etc/os-release")); err == nil {
		b.osRelease = string(data)
	}
	var installed *nixeval.Installed
	if flake := builtFromFlake(root.mount); flake != "" {
		name, _ := os.ReadFile(flake + "-name")
		installed, err = nixeval.EvaluateFlake(ctx, root.mount, flake, strings.TrimSpace(string(name)))
	} else {
		installed, err = nixeval.Evaluate(ctx, root.mount)
	}
	var reasons []string
	var v6 nixeval.IPv6
	if err != nil {
		reasons = []string{"the installed configuration does not evaluate: " + err.Error()}
	} else {
		var down []string
		down, v6 = nixeval.Check(host, installed, record)
		reasons = append(bootWhy, down...)
		if rootVolume != nil {
			reasons = append(reasons, luksReasons(installed.Raw, rootVolume)...)
		}
	}
	if h.nvram != nil {
		reasons = append(reasons, h.nvram.Reasons()...)
	}
	fsDesc := root.fstype
	if rootVolume != nil {
		fsDesc += " in a LUKS volume"
	}
	b.installed = fmt.Sprintf("NixOS on /dev/%s (%s)", root.name, fsDesc)
	if installed != nil && installed.Hostname != "" {
		b.cfg.Hostname = installed.Hostname
		b.installed += ", hostname " + installed.Hostname
	}
	b.nic = h.uplinkName(installed)
	if installed != nil {
		var keys strings.Builder
		for _, k := range installed.RootKeys {
			keys.WriteString(strings.TrimSpace(k) + "\n")
		}
		b.authKeys = keys.String()
	}
	if len(reasons) > 0 {
		b.network, b.cfg.SSHD = false, false
		b.why = "the installed system boots but does not come up on the network: " + strings.Join(reasons, "; ")
	}
	// IPv6 is what the configuration makes of it: none, or the server's
	// address with the routes it sets, through a wrong gateway, say.
	switch {
	case !v6.Configured:
		b.net.v6, b.net.gw6 = netip.Prefix{}, netip.Addr{}
	case len(v6.Problems) > 0:
		b.net.gw6 = v6.Gateway
		if !v6.Own {
			b.net.v6 = netip.Prefix{}
		}
		b.installed += "; IPv6 does not work: " + strings.Join(v6.Problems, "; ")
	}
	if rootVolume != nil {
		// The booted system's root: the volume stays mapped while it runs.
		h.holdVolume(rootVolume.loop)
	}
	// The booted system: its root mounted as it would be, its configuration
	// and store where NixOS has them.
	sys := "/run/nixbook-sim/system"
	b.cfg.Mounts = append(b.cfg.Mounts, hostinit.Mount{Source: root.device, Target: sys, FSType: root.fstype})
	for _, dir := range []string{"etc/nixos", "nix"} {
		if isDir(filepath.Join(root.mount, dir)) {
			b.cfg.Mounts = append(b.cfg.Mounts, hostinit.Mount{Source: filepath.Join(sys, dir), Target: "/" + dir, InRoot: true})
		}
	}
	// What root and users write lives on the disk, as on a server: a
	// reinstall that keeps it keeps it, one that erases it erases it.
	for _, dir := range []string{"root", "home"} {
		b.cfg.Mounts = append(b.cfg.Mounts, hostinit.Mount{Source: filepath.Join(sys, dir), Target: "/" + dir, InRoot: true, Create: true})
	}
	if system := resolveIn(root.mount, "/nix/var/nix/profiles/system"); system != "" {
		b.cfg.Files = append(b.cfg.Files,
			hostinit.File{Path: "/run/current-system", Link: system},
			hostinit.File{Path: "/run/booted-system", Link: system})
		for _, tool := range nixosTools(filepath.Join(root.mount, system, "sw", "bin")) {
			b.cfg.Files = append(b.cfg.Files, hostinit.File{Path: "/usr/local/bin/" + tool, Link: "/run/current-system/sw/bin/" + tool})
		}
	}
	if bootFS != nil && bootFS != root {
		b.cfg.Mounts = append(b.cfg.Mounts, hostinit.Mount{Source: bootFS.device, Target: "/boot", FSType: bootFS.fstype})
	}
	b.cfg.Hide = without(b.cfg.Hide, "/nix")
	return nil
}

// builtFromFlake is the flake the installed system under root was built
// from, as the payload's nixos-install --flake keeps it in the system's
// store path (with the system's name beside it); "" when it was built from
// a configuration.nix.
func builtFromFlake(root string) string {
	system := resolveIn(root, "/nix/var/nix/profiles/system")
	if system == "" {
		return ""
	}
	dir := filepath.Join(root, system, "nixbook-sim-flake")
	if !exists(filepath.Join(dir, "flake.nix")) {
		return ""
	}
	return dir
}

// evalHost is what the host really is, for nixeval.Bootable.
func (h *Host) evalHost() nixeval.Host {
	nic := h.spec.predictedName()
	if nic == "" {
		nic = h.spec.NIC
	}
	eh := nixeval.Host{
		Name:        h.spec.Name,
		NIC:         nic,
		MAC:         h.spec.MAC,
		IPv4CIDR:    h.v4.String(),
		IPv4Gateway: h.f.plan.gw4.String(),
		IPv6CIDR:    h.v6.String(),
		IPv6Gateway: h.f.plan.gw6.String(),
		DiskAliases: map[string]string{},
		UEFI:        h.spec.UEFI(),
	}
	for _, d := range h.devs.BootDisks() {
		eh.Disks = append(eh.Disks, d.Path())
		eh.DiskAliases[d.ByIDPath()] = d.Path()
		if !slices.Contains(eh.Controllers, d.ControllerModule()) {
			eh.Controllers = append(eh.Controllers, d.ControllerModule())
		}
	}
	return eh
}

// uplinkName is the name the installed system's kernel gives the NIC: the
// predictable name, eth0 without predictable names, or a name pinned to its
// MAC.
func (h *Host) uplinkName(in *nixeval.Installed) string {
	name := h.spec.predictedName()
	if name == "" {
		name = h.spec.NIC
	}
	if in == nil {
		return name
	}
	if !in.UsePredictableNames {
		name = "eth0"
	}
	for _, r := range in.Renames {
		if strings.EqualFold(r.MAC, h.spec.MAC) && ifaceName.MatchString(r.Name) {
			name = r.Name
		}
	}
	return name
}

// findDistribution finds another distribution's root on the disks (OVH's
// Debian template, say): a file system with etc/os-release and an SSH host
// key.
func findDistribution(mounted []*installedFS) *installedFS {
	for _, m := range mounted {
		if exists(filepath.Join(m.mount, "etc/os-release")) && exists(filepath.Join(m.mount, "etc/ssh/ssh_host_ed25519_key")) {
			return m
		}
	}
	return nil
}

// prepareDistribution boots a distribution installed on the disks as the
// server it was rented with: its network up on the NIC's own name (as the
// provider's template configures it), its own host key, hostname and root's
// authorized keys, its root file system mounted, /root and /home on it.
func (h *Host) prepareDistribution(b *boot, root *installedFS) error {
	read := func(p string) string {
		data, _ := os.ReadFile(filepath.Join(root.mount, p))
		return string(data)
	}
	b.hostKey = KeyPair{Private: read("etc/ssh/ssh_host_ed25519_key"), Public: read("etc/ssh/ssh_host_ed25519_key.pub")}
	b.osRelease = read("etc/os-release")
	// root's keys are its own /root/.ssh/authorized_keys, on the disk.
	b.authKeys = ""
	if name := strings.TrimSpace(read("etc/hostname")); name != "" {
		b.cfg.Hostname = name
	}
	osr := ""
	for _, line := range strings.Split(b.osRelease, "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			osr = strings.Trim(v, `"`)
		}
	}
	b.installed = fmt.Sprintf("%s on /dev/%s (%s)", osr, root.name, root.fstype)
	sys := "/run/nixbook-sim/system"
	b.cfg.Mounts = append(b.cfg.Mounts, hostinit.Mount{Source: root.device, Target: sys, FSType: root.fstype})
	for _, dir := range []string{"root", "home"} {
		b.cfg.Mounts = append(b.cfg.Mounts, hostinit.Mount{Source: filepath.Join(sys, dir), Target: "/" + dir, InRoot: true, Create: true})
	}
	return nil
}

// diskHostKey is the host key the installed system serves: the one
// nixos-install generated, else one made at its first boot and kept.
func (h *Host) diskHostKey(root *installedFS) (KeyPair, error) {
	if root != nil {
		priv, err1 := os.ReadFile(filepath.Join(root.mount, "etc/ssh/ssh_host_ed25519_key"))
		pub, err2 := os.ReadFile(filepath.Join(root.mount, "etc/ssh/ssh_host_ed25519_key.pub"))
		if err1 == nil && err2 == nil {
			return KeyPair{Private: string(priv), Public: string(pub)}, nil
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.firstBootKey.Private == "" {
		key, err := newKeyPair("root@nixos")
		if err != nil {
			return KeyPair{}, err
		}
		h.firstBootKey = key
	}
	return h.firstBootKey, nil
}

// mountInstalled mounts every file system of the host's disks the machine
// can read, read-only, under the host's directory.
func (h *Host) mountInstalled(ctx context.Context) ([]*installedFS, error) {
	var out []*installedFS
	for _, d := range h.devs.BootDisks() {
		candidates := map[string]string{d.Loop: d.Name}
		parts, err := devtree.Partitions(d.Loop)
		if err != nil {
			return out, err
		}
		for _, p := range parts {
			candidates[p.MachinePath] = d.PartName(p.Number)
		}
		for _, dev := range sortedKeys(candidates) {
			fstype := devtree.Probe(ctx, dev)["ID_FS_TYPE"]
			if !mountable(fstype) {
				continue
			}
			m := &installedFS{device: dev, name: candidates[dev], fstype: fstype, mount: filepath.Join(h.dir, "inspect", candidates[dev])}
			if err := os.MkdirAll(m.mount, 0o700); err != nil {
				return out, err
			}
			if err := h.f.state.Add(simstate.Mounts, m.mount); err != nil {
				return out, err
			}
			if err := unix.Mount(dev, m.mount, fstype, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
				h.f.logf("%s: look at /dev/%s: %v", h.spec.Name, m.name, err)
				_ = h.f.state.Remove(simstate.Mounts, m.mount)
				continue
			}
			out = append(out, m)
		}
	}
	return out, nil
}

func (h *Host) unmountInstalled(mounted []*installedFS) {
	for _, m := range mounted {
		if err := unmountSoon(m.mount); err != nil {
			h.f.logf("%s: unmount %s: %v", h.spec.Name, m.mount, err)
			continue
		}
		_ = h.f.state.Remove(simstate.Mounts, m.mount)
		_ = os.Remove(m.mount)
	}
	_ = os.Remove(filepath.Join(h.dir, "inspect"))
}

// unmountSoon unmounts path, waiting out a moment of EBUSY: a host booting
// meanwhile copies the machine's mounts into its new mount namespace and
// holds this one until it pivots. Left mounted read-only, the file system
// could not be mounted read-write by the host that boots it.
func unmountSoon(path string) error {
	var err error
	for range 100 {
		if err = unix.Unmount(path, 0); !errors.Is(err, unix.EBUSY) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// resolveIn follows the symbolic links of path inside root (absolute
// targets are taken from root) and returns the path it ends at, "" when
// it leads nowhere.
func resolveIn(root, path string) string {
	for range 16 {
		target, err := os.Readlink(filepath.Join(root, path))
		if err != nil {
			if exists(filepath.Join(root, path)) {
				return path
			}
			return ""
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = filepath.Clean(target)
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func without(list []string, item string) []string {
	var out []string
	for _, s := range list {
		if s != item {
			out = append(out, s)
		}
	}
	return out
}
