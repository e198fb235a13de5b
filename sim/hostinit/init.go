package hostinit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// runInit is the host's PID 1: it reads the boot's Config from stdin, builds
// the host's root, tells the controller, waits for its go, starts sshd and
// then reaps orphans until the controller kills it (which ends the host).
func runInit(stdin io.Reader, stdout, stderr io.Writer) int {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "init: "+format+"\n", args...) }
	if os.Getpid() != 1 {
		logf("must run as PID 1 of a new PID namespace")
		return 1
	}
	in := bufio.NewReader(stdin)
	line, err := in.ReadBytes('\n')
	if err != nil {
		logf("read config: %v", err)
		return 1
	}
	var cfg Config
	if err := json.Unmarshal(line, &cfg); err != nil {
		logf("decode config: %v", err)
		return 1
	}
	// Before anything of the host runs: its swap is the controller's
	// simulation, never the machine's.
	if err := denySwapSyscalls(); err != nil {
		logf("%v", err)
		return 1
	}
	var stageDev uint64
	if err := buildRoot(cfg, &stageDev); err != nil {
		logf("%v", err)
		return 1
	}
	// The device the root's new files report (the overlay's upper layer),
	// which no mount table shows, lets the controller tell the host's loop
	// devices from others'.
	fmt.Fprintln(stdout, MsgMounted, stageDev)
	msg, err := in.ReadString('\n')
	if err != nil || strings.TrimSpace(msg) != MsgStart {
		logf("no start from the controller: %q %v", msg, err)
		return 1
	}
	logf("%s booted in %s mode, boot id %s", cfg.Host, cfg.Mode, cfg.BootID)
	return supervise(cfg, logf)
}

// buildRoot makes the host's file systems in the init's own mount namespace
// and pivots into them. The machine's root is only ever the read-only lower
// layer of an overlay, so nothing inside a host can change the machine's files.
func buildRoot(cfg Config, stageDev *uint64) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	size := fmt.Sprintf("size=%dm", max(cfg.RAMDiskMiB, 16))
	stage := cfg.StageDir
	if err := unix.Mount("tmpfs", stage, "tmpfs", 0, size+",mode=0755"); err != nil {
		return fmt.Errorf("mount stage tmpfs on %s: %w", stage, err)
	}

	upper, work, root := filepath.Join(stage, "upper"), filepath.Join(stage, "work"), filepath.Join(stage, "root")
	for _, d := range []string{upper, work, root} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	// The machine's /root, /mnt, /home... show empty: opaque directories of
	// the upper layer hide what is below, without a mount a server would
	// not have (nixos-generate-config reads the mounts under /mnt).
	for _, d := range append([]string{"/root"}, cfg.Hide...) {
		dir := filepath.Join(upper, d)
		mode := os.FileMode(0o755)
		if d == "/root" {
			mode = 0o700
		}
		if err := os.MkdirAll(dir, mode); err != nil {
			return err
		}
		if err := os.Chmod(dir, mode); err != nil {
			return err
		}
		if err := unix.Setxattr(dir, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			return fmt.Errorf("hide %s: %w", d, err)
		}
	}
	opts := "lowerdir=/,upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount root overlay: %w", err)
	}
	in := func(p string) string { return filepath.Join(root, p) }
	type fsMount struct{ fstype, target, opts string }
	mounts := []fsMount{
		{"proc", "/proc", ""},
		{"sysfs", "/sys", ""},
		{"tmpfs", "/dev", "mode=0755,size=1m"},
		{"tmpfs", "/run", "mode=0755,size=64m"},
		{"tmpfs", "/tmp", "mode=1777," + size},
	}
	for _, m := range mounts {
		if err := mountIn(root, m.target, m.fstype, m.opts); err != nil {
			return err
		}
	}
	if err := makeDev(in("/dev")); err != nil {
		return err
	}
	if err := maskBlock(in("/sys")); err != nil {
		return err
	}
	if err := maskFirmware(in("/sys/firmware"), cfg.UEFI); err != nil {
		return err
	}
	bootID := filepath.Join(stage, "boot_id")
	if err := os.WriteFile(bootID, []byte(cfg.BootID+"\n"), 0o444); err != nil {
		return err
	}
	partitions := filepath.Join(stage, "partitions")
	if err := os.WriteFile(partitions, []byte(PartitionsHeader), 0o444); err != nil {
		return err
	}
	swaps := filepath.Join(stage, "swaps")
	if err := os.WriteFile(swaps, []byte(SwapsHeader), 0o444); err != nil {
		return err
	}
	binds := []Mount{
		{Source: bootID, Target: "/proc/sys/kernel/random/boot_id", ReadOnly: true},
		{Source: partitions, Target: "/proc/partitions"},
		{Source: swaps, Target: "/proc/swaps"},
		{Source: cfg.Helper, Target: HelperPath, ReadOnly: true},
		{Source: cfg.Control, Target: ControlPath},
	}
	if cfg.MemoryMiB > 0 {
		meminfo := filepath.Join(stage, "meminfo")
		if err := writeMeminfo(meminfo, cfg.MemoryMiB); err != nil {
			return err
		}
		binds = append(binds, Mount{Source: meminfo, Target: "/proc/meminfo", ReadOnly: true})
	}
	for _, d := range cfg.Dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, m := range append(binds, cfg.Mounts...) {
		if err := mountFrom(root, m); err != nil {
			return err
		}
	}
	if err := pivot(root); err != nil {
		return err
	}
	if err := writeFiles(cfg); err != nil {
		return err
	}
	// Files of the overlay's upper layer report a device of their own.
	var st unix.Stat_t
	if err := unix.Stat("/etc/hostname", &st); err == nil {
		*stageDev = st.Dev
	}
	if len(cfg.Activate) > 0 {
		cmd := exec.Command(cfg.Activate[0], cfg.Activate[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(cfg.Activate, " "), err)
		}
	}
	return nil
}

func mountIn(root, target, fstype, opts string) error {
	dst := filepath.Join(root, target)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(fstype, dst, fstype, unix.MS_NOSUID, opts); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype, target, err)
	}
	return nil
}

// mountFrom mounts a path of the machine (or a device) into the host's root.
// mountOutwaitingCopies mounts a file system, waiting out EBUSY for a
// while: the kernel refuses to mount a file system read-write while a
// read-only mount of it lives in another namespace, such as the host's
// previous boot's, which ends a moment after its init is killed. (The
// controller's own read-only look at the disks is in a namespace of its
// own, which no init copies.)
func mountOutwaitingCopies(source, target, fstype string, flags uintptr, data string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := unix.Mount(source, target, fstype, flags, data)
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mountFrom(root string, m Mount) error {
	dst := filepath.Join(root, m.Target)
	if m.InRoot {
		m.Source = filepath.Join(root, m.Source)
	}
	if m.Create {
		if err := os.MkdirAll(m.Source, 0o755); err != nil {
			return fmt.Errorf("mount %s: %w", m.Target, err)
		}
	}
	if m.FSType == "overlay" {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("overlay", dst, "overlay", 0, m.Options); err != nil {
			return fmt.Errorf("mount overlay on %s: %w", m.Target, err)
		}
		return nil
	}
	st, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("mount %s: %w", m.Target, err)
	}
	if st.IsDir() || m.FSType != "" {
		err = os.MkdirAll(dst, 0o755)
	} else if _, serr := os.Stat(dst); serr != nil {
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			err = os.WriteFile(dst, nil, 0o600)
		}
	}
	if err != nil {
		return fmt.Errorf("mount point %s: %w", m.Target, err)
	}
	if m.FSType != "" {
		var flags uintptr
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		if err := mountOutwaitingCopies(m.Source, dst, m.FSType, flags, m.Options); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Source, m.Target, err)
		}
		return nil
	}
	if err := unix.Mount(m.Source, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", m.Source, m.Target, err)
	}
	if m.ReadOnly {
		if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("bind %s read-only: %w", m.Target, err)
		}
	}
	return nil
}

// maskBlock replaces the machine's block device directories of sysfs with
// empty ones the controller fills with the host's disks under their host
// names (sda, sda1), as parted and lsblk look them up by name; and the
// network class, which it fills with the host's links, its NIC with the
// device link a veth lacks.
func maskBlock(sys string) error {
	for _, d := range []string{"block", "dev/block", "class/block", "class/net"} {
		if err := unix.Mount("tmpfs", filepath.Join(sys, d), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755,size=256k"); err != nil {
			return fmt.Errorf("mask /sys/%s: %w", d, err)
		}
	}
	return nil
}

// maskFirmware replaces the machine's /sys/firmware with the host's: efi
// (with efivars, where efibootmgr and grub-install look) only on a UEFI host,
// so a host's firmware never depends on how the machine booted.
func maskFirmware(dir string, uefi bool) error {
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
		return fmt.Errorf("mask /sys/firmware: %w", err)
	}
	if uefi {
		if err := os.MkdirAll(filepath.Join(dir, "efi", "efivars"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "efi", "fw_platform_size"), []byte("64\n"), 0o444); err != nil {
			return err
		}
	}
	return unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755,size=64k")
}

// makeDev fills the host's /dev with what a server has besides its disks,
// which the controller adds and removes as udev would.
func makeDev(dev string) error {
	type node struct {
		name         string
		mode         uint32
		major, minor uint32
	}
	nodes := []node{
		{"null", unix.S_IFCHR | 0o666, 1, 3},
		{"zero", unix.S_IFCHR | 0o666, 1, 5},
		{"full", unix.S_IFCHR | 0o666, 1, 7},
		{"random", unix.S_IFCHR | 0o666, 1, 8},
		{"urandom", unix.S_IFCHR | 0o666, 1, 9},
		{"tty", unix.S_IFCHR | 0o666, 5, 0},
		// The kernel log of a host goes nowhere: a null device by that name.
		{"kmsg", unix.S_IFCHR | 0o644, 1, 3},
		{"loop-control", unix.S_IFCHR | 0o660, 10, 237},
	}
	old := unix.Umask(0)
	defer unix.Umask(old)
	for _, n := range nodes {
		if err := unix.Mknod(filepath.Join(dev, n.name), n.mode, int(unix.Mkdev(n.major, n.minor))); err != nil {
			return fmt.Errorf("mknod /dev/%s: %w", n.name, err)
		}
	}
	links := map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	for _, d := range []string{"pts", "shm", "disk", "mapper"} {
		if err := os.Mkdir(filepath.Join(dev, d), 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("devpts", filepath.Join(dev, "pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		return fmt.Errorf("mount devpts: %w", err)
	}
	if err := unix.Mount("tmpfs", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=64m"); err != nil {
		return fmt.Errorf("mount /dev/shm: %w", err)
	}
	return os.Chmod(filepath.Join(dev, "shm"), 0o1777)
}

// pivot makes root the host's / and drops the machine's root from the
// host's mount namespace.
func pivot(root string) error {
	if err := os.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the machine's root: %w", err)
	}
	return os.Chdir("/")
}

func writeFiles(cfg Config) error {
	for _, pattern := range cfg.Remove {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return fmt.Errorf("remove %s: %w", pattern, err)
		}
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				return err
			}
		}
	}
	for _, f := range cfg.Files {
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return err
		}
		// Replace, never write through: the machine's file may be a symbolic
		// link (Debian's /etc/os-release, /usr/sbin/reboot).
		if err := os.Remove(f.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if f.Link != "" {
			if err := os.Symlink(f.Link, f.Path); err != nil {
				return err
			}
			continue
		}
		mode := os.FileMode(f.Mode & 0o7777)
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(f.Path, []byte(f.Data), mode); err != nil {
			return err
		}
		if err := os.Chmod(f.Path, mode); err != nil {
			return err
		}
	}
	return nil
}

// supervise runs sshd (restarting it if it dies, as systemd would) and reaps
// every orphan of the host.
func supervise(cfg Config, logf func(string, ...any)) int {
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGTERM, syscall.SIGINT)
	children := make(chan os.Signal, 16)
	signal.Notify(children, syscall.SIGCHLD)
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"HOME=/root",
	}
	sshdPID := 0
	var lastStart time.Time
	startSSHD := func() {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			logf("sshd: %v", err)
			return
		}
		cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config")
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			logf("start sshd: %v", err)
			return
		}
		sshdPID = cmd.Process.Pid
		lastStart = time.Now()
	}
	if cfg.SSHD {
		startSSHD()
	}
	restart := time.NewTimer(time.Hour)
	restart.Stop()
	for {
		select {
		case <-children:
		case <-restart.C:
			startSSHD()
			continue
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err != nil || pid <= 0 {
				break
			}
			if pid == sshdPID {
				sshdPID = 0
				logf("sshd exited (%v)", ws)
				// Restart at most once a second so a broken config does not spin.
				restart.Reset(time.Until(lastStart.Add(time.Second)))
			}
		}
	}
}

// writeMeminfo writes the machine's /proc/meminfo as a host with mib of RAM
// sees it: its total, free and available memory scaled down to that, the
// rest as the machine has it.
func writeMeminfo(path string, mib int) error {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return err
	}
	totalKB := int64(mib) << 10
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		key, _, _ := strings.Cut(line, ":")
		switch key {
		case "MemTotal":
			line = fmt.Sprintf("MemTotal:       %8d kB", totalKB)
		case "MemFree", "MemAvailable":
			line = fmt.Sprintf("%-16s%8d kB", key+":", totalKB*9/10)
		}
		b.WriteString(line + "\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o444)
}
