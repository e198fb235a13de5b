package vm

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nixbook/nixbook/internal/buildonce"
)

// machineScript adds kexec-tools, GRUB and OVMF to the image's root for the
// simulator's vm hosts; with rootfs.sh it keys the Tools cache entry.
//
//go:embed machine.sh
var machineOwn []byte

// machineScript is machine.sh with the functions it sources.
var machineScript = withCopyLib(machineOwn)

// Tools is what the simulator's vm hosts add to the image.
type Tools struct {
	Dir string
	// Overlay is an initramfs archive laid over the image's: kexec and
	// GRUB's grub-install with its BIOS and UEFI modules, and their
	// libraries.
	Overlay string
	// OVMFCode and OVMFVars are Debian's UEFI firmware and its empty
	// variable store (copied per host, as it is written).
	OVMFCode, OVMFVars string
	Manifest           string
}

func toolsDir(cache string) string {
	return filepath.Join(cache, "machine-"+hashOf(rootfsScript, machineScript))
}

func loadTools(dir string) (Tools, error) {
	t := Tools{
		Dir:      dir,
		Overlay:  filepath.Join(dir, "tools.cpio"),
		OVMFCode: filepath.Join(dir, "OVMF_CODE.fd"),
		OVMFVars: filepath.Join(dir, "OVMF_VARS.fd"),
	}
	for _, p := range []string{t.Overlay, t.OVMFCode, t.OVMFVars} {
		if _, err := os.Stat(p); err != nil {
			return Tools{}, err
		}
	}
	if m, err := os.ReadFile(filepath.Join(dir, "manifest")); err == nil {
		t.Manifest = string(m)
	}
	return t, nil
}

// EnsureTools returns the image and the vm hosts' tools, building what is
// not cached yet (the tools: a minute or two, mostly downloads, once per
// machine).
func EnsureTools(ctx context.Context, logf func(format string, args ...any)) (Image, Tools, error) {
	img, err := Ensure(ctx, logf)
	if err != nil {
		return Image{}, Tools{}, err
	}
	cache := CacheDir()
	dir := toolsDir(cache)
	if t, err := loadTools(dir); err == nil {
		return img, t, nil
	}
	if os.Geteuid() != 0 {
		return Image{}, Tools{}, ErrNeedsRoot
	}
	wait := func(format string, args ...any) { logf("vm tools: "+format, args...) }
	t, err := buildonce.Do(ctx, filepath.Join(cache, "machine.lock"), LockWait, wait,
		func() (Tools, error) { return loadTools(dir) },
		func(ctx context.Context) error { return buildTools(ctx, cache, dir, logf) })
	if err != nil {
		return Image{}, Tools{}, fmt.Errorf("vm tools: %w", err)
	}
	return img, t, nil
}

func buildTools(ctx context.Context, cache, dir string, logf func(format string, args ...any)) error {
	logPath := filepath.Join(cache, "machine.log")
	root, err := ensureRoot(ctx, cache, logf)
	if err != nil {
		return err
	}
	removeStale(cache, "machine-", dir)
	logf("vm tools: adding kexec-tools, GRUB and OVMF to the image (once per machine); log: %s", logPath)
	start := time.Now()
	if err := runBuild(ctx, logPath, "build", machineScript, root, dir); err != nil {
		return err
	}
	logf("vm tools: built in %s: %s", time.Since(start).Round(time.Second), dir)
	return nil
}

// kernelVersion is the image's kernel release, from its manifest.
func (img Image) kernelVersion() string {
	for _, line := range strings.Split(img.Manifest, "\n") {
		if v, ok := strings.CutPrefix(line, "kernel "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
