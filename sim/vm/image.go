// Package vm builds and runs QEMU guests with a Debian kernel and real ZFS:
// the image (rootfs.sh, then initrd.sh: about 5 minutes on two cores on first
// use, then cached under CacheDir, keyed by the scripts' content) and the
// QEMU process that boots it, or boots its disks through the firmware. The
// ZFS module's tests (internal/modules/zfs/internal/zfsvm) and the simulated
// fleet's vm hosts both run it, under software emulation (TCG).
package vm

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nixbook/nixbook/internal/buildonce"
)

// The scripts that build the image; their content keys the cache, so a
// change to either rebuilds what depends on it.
var (
	//go:embed rootfs.sh
	rootfsScript []byte
	//go:embed initrd.sh
	initrdOwn []byte
	//go:embed copy.sh
	copyLib []byte
	// initrdScript is initrd.sh with the functions it sources.
	initrdScript = withCopyLib(initrdOwn)
)

// DefaultCacheDir keeps built images between runs; NIXBOOK_ZFSVM_CACHE
// overrides it.
const DefaultCacheDir = "/var/cache/nixbook/zfsvm"

// BuildTimeout bounds a cold build: debootstrap, the kernel and the DKMS
// build of ZFS take about 5 minutes on two cores (measured: 289 s, 246 of them
// DKMS), more when the mirror is slow or down (each download step retries for
// up to 20 minutes).
const BuildTimeout = 50 * time.Minute

// Image is a built VM image.
type Image struct {
	Dir      string
	Kernel   string // the Debian kernel
	Initrd   string // the initramfs the guest runs from
	Key      string // private key root accepts
	HostKey  string // the guest's public host key, authorized_keys format
	Manifest string // kernel and package versions
}

// CacheDir is where images are kept.
func CacheDir() string {
	if d := os.Getenv("NIXBOOK_ZFSVM_CACHE"); d != "" {
		return d
	}
	return DefaultCacheDir
}

// withCopyLib is script with copy.sh's functions defined first, for a run
// with bash -c, where the script cannot source a file beside it.
func withCopyLib(script []byte) []byte {
	return slices.Concat(copyLib, []byte("\n"), script)
}

func hashOf(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// imageDir and rootfsDir name the cache entries for the current scripts.
func imageDir(cache string) string {
	return filepath.Join(cache, "image-"+hashOf(rootfsScript, initrdScript))
}

func rootfsDir(cache string) string {
	return filepath.Join(cache, "rootfs-"+hashOf(rootfsScript))
}

// Cached returns the image for the current scripts if it has been built.
func Cached() (Image, bool) {
	img, err := loadImage(imageDir(CacheDir()))
	return img, err == nil
}

func loadImage(dir string) (Image, error) {
	img := Image{
		Dir:     dir,
		Kernel:  filepath.Join(dir, "vmlinuz"),
		Initrd:  filepath.Join(dir, "initrd.cpio"),
		Key:     filepath.Join(dir, "id_ed25519"),
		HostKey: "",
	}
	for _, p := range []string{img.Kernel, img.Initrd, img.Key} {
		if _, err := os.Stat(p); err != nil {
			return Image{}, err
		}
	}
	hk, err := os.ReadFile(filepath.Join(dir, "ssh_host_ed25519_key.pub"))
	if err != nil {
		return Image{}, err
	}
	img.HostKey = strings.TrimSpace(string(hk))
	if m, err := os.ReadFile(filepath.Join(dir, "manifest")); err == nil {
		img.Manifest = string(m)
	}
	return img, nil
}

// LockWait bounds the wait for another process's build of the image: a
// second test package needing it waits for the first instead of building it
// again.
const LockWait = BuildTimeout + 10*time.Minute

// Ensure returns the cached image, building it first when needed. Builds
// are serialized across processes with a lock file; the build's output goes
// to build.log in the cache directory, whose tail a failure reports.
func Ensure(ctx context.Context, logf func(format string, args ...any)) (Image, error) {
	cache := CacheDir()
	dir := imageDir(cache)
	if img, err := loadImage(dir); err == nil {
		return img, nil
	}
	if os.Geteuid() != 0 {
		return Image{}, ErrNeedsRoot
	}
	wait := func(format string, args ...any) { logf("vm image: "+format, args...) }
	img, err := buildonce.Do(ctx, filepath.Join(cache, "build.lock"), LockWait, wait,
		func() (Image, error) { return loadImage(dir) },
		func(ctx context.Context) error { return build(ctx, cache, dir, logf) })
	if err != nil {
		return Image{}, fmt.Errorf("vm image: %w", err)
	}
	return img, nil
}

// build makes the root, unless built already, and the image from it.
func build(ctx context.Context, cache, dir string, logf func(format string, args ...any)) error {
	root, err := ensureRoot(ctx, cache, logf)
	if err != nil {
		return err
	}
	removeStale(cache, "image-", dir)
	start := time.Now()
	if err := runBuild(ctx, filepath.Join(cache, "build.log"), "build the initramfs", initrdScript, root, dir); err != nil {
		return err
	}
	logf("vm image: assembled in %s: %s", time.Since(start).Round(time.Second), dir)
	return nil
}

// runBuild runs a build script, its output in logPath, within BuildTimeout;
// a failure says what failed, with the log's tail.
func runBuild(ctx context.Context, logPath, what string, script []byte, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, BuildTimeout)
	defer cancel()
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	if err := runScript(ctx, script, logFile, args...); err != nil {
		return fmt.Errorf("%s: %w%s", what, err, logTail(logPath))
	}
	return nil
}

// ensureRoot returns the Debian root with ZFS that both the image and the
// tools are made from, building it first when needed. Its own lock: the
// image's build and the tools' (each under its lock) may both need it.
func ensureRoot(ctx context.Context, cache string, logf func(format string, args ...any)) (string, error) {
	root := rootfsDir(cache)
	load := func() (string, error) {
		_, err := os.Stat(filepath.Join(root, "nixbook-kver"))
		return root, err
	}
	wait := func(format string, args ...any) { logf("vm root: "+format, args...) }
	return buildonce.Do(ctx, filepath.Join(cache, "rootfs.lock"), LockWait, wait, load, func(ctx context.Context) error {
		logPath := filepath.Join(cache, "rootfs.log")
		removeStale(cache, "rootfs-", root)
		logf("vm image: building the Debian root with ZFS (once per machine, 5 to 15 minutes on two cores); log: %s", logPath)
		start := time.Now()
		if err := runBuild(ctx, logPath, "build the root", rootfsScript, root); err != nil {
			return err
		}
		logf("vm image: root built in %s", time.Since(start).Round(time.Second))
		return nil
	})
}

// ErrNeedsRoot says the image is not built and this process cannot build it.
var ErrNeedsRoot = errors.New("vm image: the VM image is not built and building it needs root (debootstrap, chroot)")

// runScript runs an embedded script with bash, niced, as the machine is
// shared with other builds and tests. Cancelling ctx stops the script and
// everything it started (debootstrap, apt-get in the chroot) with SIGTERM,
// upon which the script removes its work directory (its EXIT trap).
func runScript(ctx context.Context, script []byte, log *os.File, args ...string) error {
	argv := append([]string{"-n", "10", "bash", "-c", string(script), "vmimage"}, args...)
	cmd := exec.CommandContext(ctx, "nice", argv...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.Stdin = bytes.NewReader(nil)
	cmd.Cancel = func() error {
		signalTree(cmd.Process.Pid, syscall.SIGTERM)
		return nil
	}
	cmd.WaitDelay = 30 * time.Second
	return cmd.Run()
}

// removeStale deletes cache entries with prefix other than keep: images of
// older scripts.
func removeStale(cache, prefix, keep string) {
	entries, err := os.ReadDir(cache)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(cache, e.Name())
		if strings.HasPrefix(e.Name(), prefix) && p != keep && e.IsDir() {
			_ = os.RemoveAll(p)
		}
	}
}

func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ""
		}
		return "; " + err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return "\n" + strings.Join(lines, "\n")
}
