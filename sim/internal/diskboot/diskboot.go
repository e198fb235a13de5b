// Package diskboot finds what a simulated host's disk boot brings up: the
// file systems of its disks, mounted read-only for a look in a mount
// namespace of the look's own;
// the LUKS volumes its initrd's keys open; the GRUB and /boot that boot, and
// what their menus load; the loader a UEFI firmware finds on the EFI system
// partitions; and whether the installed NixOS would come up on the
// server's network.
package diskboot

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nixbook/nixbook/sim/hostinit"
	"github.com/nixbook/nixbook/sim/internal/devtree"
	"github.com/nixbook/nixbook/sim/nixeval"
)

// Boot is a host's disks as a disk boot finds them.
type Boot struct {
	Host string // the host's name, for messages
	// Disks are the host's disks as this boot names them (a vm host's:
	// those still in the machine).
	Disks []*devtree.Disk
	// Images: read the disks' images, not their loop devices (a vm host's
	// disks, which QEMU writes, have none). Only the ESPs are read so.
	Images bool
	// Dir is the host's directory: the file systems are mounted under
	// Dir/inspect for the look.
	Dir  string
	Logf func(format string, args ...any)
}

// Server is what the installed system is checked against.
type Server struct {
	// Host is what the server really is; its Devices are filled in from
	// the disks.
	Host nixeval.Host
	// Firmware are the reasons the server's firmware gives not to boot as
	// OVH would (a UEFI server's boot order).
	Firmware []string
	// Tools picks the tools of a system's sw/bin the host finds in
	// /usr/local/bin.
	Tools func(swBin string) []string
}

// Kind is what a disk boot found on the disks.
type Kind int

const (
	Nothing      Kind = iota // no system that boots
	Distribution             // another distribution (OVH's Debian template, say)
	NixOS                    // NixOS, its configuration evaluated and checked against the server
)

// HostKey is a host key as OpenSSH's files hold it.
type HostKey struct {
	Private, Public string
}

// System is what a disk boot brings up.
type System struct {
	Kind      Kind
	Hostname  string
	OSRelease string
	// HostKey is the one on the disks; nil when they hold none, so the
	// system makes one at its first boot.
	HostKey *HostKey
	// AuthorizedKeys are root's where NixOS puts them
	// (users.users.root.openssh.authorizedKeys); "" for a distribution,
	// whose root has its own on the disk.
	AuthorizedKeys string
	// Offline: it boots but does not come up on the network (nor starts
	// sshd); Why says why.
	Offline bool
	Why     string
	// Installed is one line about what is on the disks.
	Installed string
	// Config is the installed NixOS's configuration; nil when it does not
	// evaluate. IPv6 is what it makes of the server's IPv6.
	Config *nixeval.Installed
	IPv6   nixeval.IPv6
	// Mounts and Files are what the host's init mounts and makes for the
	// system; Unhide are directories of the machine the host sees as the
	// system has them, not empty.
	Mounts []hostinit.Mount
	Files  []hostinit.File
	Unhide []string
	// Volume is the loop device of the LUKS volume the root lies in, which
	// the caller holds open while the system runs (its init mounts the
	// root from it); nil without one.
	Volume *os.File
}

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

// System finds the system on the disks: another distribution, or NixOS,
// whose configuration.nix (or flake) is evaluated with Nix and checked
// against the server: would it come up on the server's network? If it
// would not, the host still boots but stays off the network, and Why
// says why.
func (b Boot) System(ctx context.Context, server Server) (s *System, err error) {
	if lookErr := inPrivateMounts(func() { s, err = b.system(ctx, server) }); lookErr != nil {
		return nil, lookErr
	}
	return s, err
}

// inPrivateMounts runs look on a thread of its own in a mount namespace of
// its own, which ends with it: what look mounts no other process sees.
// Mounted in the machine's namespace, a file system would be copied into
// the namespace of any host whose init starts meanwhile, and held there
// until that init pivots; while a copy lives, the kernel refuses to mount
// the file system read-write, which is what the host about to boot these
// disks does next. Processes look starts (blkid, nix-instantiate) are
// forked from its thread and see its mounts.
func inPrivateMounts(look func()) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime ends the thread with this goroutine,
		// and the namespace with it.
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread, which the runtime keeps (and /proc/self
			// shows): held here while another thread looks.
			errc <- inPrivateMounts(look)
			runtime.UnlockOSThread()
			return
		}
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("a mount namespace for the look: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("a mount namespace for the look: %w", err)
			return
		}
		look()
		errc <- nil
	}()
	return <-errc
}

func (b Boot) system(ctx context.Context, server Server) (*System, error) {
	s := &System{Kind: NixOS, Hostname: "nixos", OSRelease: "NAME=NixOS\nID=nixos\n"}
	mounted, err := b.mountInstalled(ctx)
	var volumes []*luksVolume
	defer func() {
		b.unmountInstalled(mounted)
		// A volume the booted system does not use is let go.
		for _, v := range volumes {
			if v.loop != nil && v.loop != s.Volume {
				v.loop.Close()
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	// A root in a LUKS volume is found once the initrd's keys open it.
	volumes, locked := b.unlockLUKS(ctx, mounted)
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
			distribution(s, distro)
			return s, nil
		}
	}
	s.HostKey = diskHostKey(root)
	if root == nil {
		s.Kind, s.Offline = Nothing, true
		s.Why = "no installed system on the disks (no etc/nixos/configuration.nix on any file system): nothing to boot"
		if len(locked) > 0 {
			var whys []string
			for _, l := range locked {
				whys = append(whys, l.why)
			}
			s.Why = "the installed system does not boot: " + strings.Join(whys, "; ")
		}
		s.Installed = s.Why
		return s, nil
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
	host := server.Host
	if host.Devices, err = devtree.DevNames(ctx, b.Disks); err != nil {
		return nil, fmt.Errorf("the disks' device names: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(root.device, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
		host.Root = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
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
		s.OSRelease = string(data)
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
	reasons = append(reasons, server.Firmware...)
	fsDesc := root.fstype
	if rootVolume != nil {
		fsDesc += " in a LUKS volume"
	}
	s.Installed = fmt.Sprintf("NixOS on /dev/%s (%s)", root.name, fsDesc)
	if installed != nil && installed.Hostname != "" {
		s.Hostname = installed.Hostname
		s.Installed += ", hostname " + installed.Hostname
	}
	s.Config, s.IPv6 = installed, v6
	if installed != nil {
		var keys strings.Builder
		for _, k := range installed.RootKeys {
			keys.WriteString(strings.TrimSpace(k) + "\n")
		}
		s.AuthorizedKeys = keys.String()
	}
	if len(reasons) > 0 {
		s.Offline = true
		s.Why = "the installed system boots but does not come up on the network: " + strings.Join(reasons, "; ")
	}
	if rootVolume != nil {
		// The booted system's root: the volume stays mapped while it runs.
		s.Volume = rootVolume.loop
	}
	// The booted system: its root mounted as it would be, its configuration
	// and store where NixOS has them.
	sys := "/run/nixbook-sim/system"
	s.Mounts = append(s.Mounts, hostinit.Mount{Source: root.device, Target: sys, FSType: root.fstype})
	for _, dir := range []string{"etc/nixos", "nix"} {
		if isDir(filepath.Join(root.mount, dir)) {
			s.Mounts = append(s.Mounts, hostinit.Mount{Source: filepath.Join(sys, dir), Target: "/" + dir, InRoot: true})
		}
	}
	// What root and users write lives on the disk, as on a server: a
	// reinstall that keeps it keeps it, one that erases it erases it.
	for _, dir := range []string{"root", "home"} {
		s.Mounts = append(s.Mounts, hostinit.Mount{Source: filepath.Join(sys, dir), Target: "/" + dir, InRoot: true, Create: true})
	}
	if system := resolveIn(root.mount, "/nix/var/nix/profiles/system"); system != "" {
		s.Files = append(s.Files,
			hostinit.File{Path: "/run/current-system", Link: system},
			hostinit.File{Path: "/run/booted-system", Link: system})
		for _, tool := range server.Tools(filepath.Join(root.mount, system, "sw", "bin")) {
			s.Files = append(s.Files, hostinit.File{Path: "/usr/local/bin/" + tool, Link: "/run/current-system/sw/bin/" + tool})
		}
	}
	if bootFS != nil && bootFS != root {
		s.Mounts = append(s.Mounts, hostinit.Mount{Source: bootFS.device, Target: "/boot", FSType: bootFS.fstype})
	}
	s.Unhide = []string{"/nix"}
	return s, nil
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

// distribution boots a distribution installed on the disks as the server
// it was rented with: its network up on the NIC's own name (as the
// provider's template configures it), its own host key, hostname and root's
// authorized keys, its root file system mounted, /root and /home on it.
func distribution(s *System, root *installedFS) {
	read := func(p string) string {
		data, _ := os.ReadFile(filepath.Join(root.mount, p))
		return string(data)
	}
	s.Kind = Distribution
	s.HostKey = &HostKey{Private: read("etc/ssh/ssh_host_ed25519_key"), Public: read("etc/ssh/ssh_host_ed25519_key.pub")}
	s.OSRelease = read("etc/os-release")
	// root's keys are its own /root/.ssh/authorized_keys, on the disk.
	s.AuthorizedKeys = ""
	if name := strings.TrimSpace(read("etc/hostname")); name != "" {
		s.Hostname = name
	}
	osr := ""
	for _, line := range strings.Split(s.OSRelease, "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			osr = strings.Trim(v, `"`)
		}
	}
	s.Installed = fmt.Sprintf("%s on /dev/%s (%s)", osr, root.name, root.fstype)
	sys := "/run/nixbook-sim/system"
	s.Mounts = append(s.Mounts, hostinit.Mount{Source: root.device, Target: sys, FSType: root.fstype})
	for _, dir := range []string{"root", "home"} {
		s.Mounts = append(s.Mounts, hostinit.Mount{Source: filepath.Join(sys, dir), Target: "/" + dir, InRoot: true, Create: true})
	}
}

// diskHostKey is the host key the installed system serves: the one
// nixos-install generated; nil for none, when the system makes one at its
// first boot.
func diskHostKey(root *installedFS) *HostKey {
	if root != nil {
		priv, err1 := os.ReadFile(filepath.Join(root.mount, "etc/ssh/ssh_host_ed25519_key"))
		pub, err2 := os.ReadFile(filepath.Join(root.mount, "etc/ssh/ssh_host_ed25519_key.pub"))
		if err1 == nil && err2 == nil {
			return &HostKey{Private: string(priv), Public: string(pub)}
		}
	}
	return nil
}

// mountInstalled mounts every file system of the host's disks the machine
// can read, read-only, under the host's directory.
func (b Boot) mountInstalled(ctx context.Context) ([]*installedFS, error) {
	var out []*installedFS
	for _, d := range b.Disks {
		candidates := map[string]string{d.Loop: d.Name}
		parts, err := devtree.Partitions(d.Loop)
		if err != nil {
			return out, err
		}
		for _, p := range parts {
			candidates[p.MachinePath] = d.PartName(p.Number)
		}
		for _, dev := range slices.Sorted(maps.Keys(candidates)) {
			fstype := devtree.Probe(ctx, dev)["ID_FS_TYPE"]
			if !mountable(fstype) {
				continue
			}
			m := &installedFS{device: dev, name: candidates[dev], fstype: fstype, mount: filepath.Join(b.Dir, "inspect", candidates[dev])}
			if err := os.MkdirAll(m.mount, 0o700); err != nil {
				return out, err
			}
			if err := unix.Mount(dev, m.mount, fstype, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
				b.Logf("%s: look at /dev/%s: %v", b.Host, m.name, err)
				continue
			}
			out = append(out, m)
		}
	}
	return out, nil
}

func (b Boot) unmountInstalled(mounted []*installedFS) {
	for _, m := range mounted {
		if err := unix.Unmount(m.mount, 0); err != nil {
			b.Logf("%s: unmount %s: %v", b.Host, m.mount, err)
			continue
		}
		_ = os.Remove(m.mount)
	}
	_ = os.Remove(filepath.Join(b.Dir, "inspect"))
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
