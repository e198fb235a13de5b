package vm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/heavytest"
)

// The tools overlay holds a kexec and a grub-install that run (their
// libraries are there), GRUB's BIOS and UEFI modules, and OVMF is Debian's.
func TestVMToolsOverlay(t *testing.T) {
	heavytest.Root(t, "building the vm hosts' tools (debootstrap, chroot)")
	_, tools, err := EnsureTools(context.Background(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\n%s", tools.Dir, tools.Manifest)
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", "cpio -idm --quiet --no-absolute-filenames < "+tools.Overlay)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unpack: %v\n%s", err, out)
	}
	for _, p := range []string{"usr/sbin/kexec", "usr/sbin/grub-install", "usr/bin/env", "usr/bin/setsid", "usr/bin/curl", "usr/lib/grub/i386-pc/boot.img", "usr/lib/grub/x86_64-efi/zfs.mod"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Error(err)
		}
	}
	for _, argv := range [][]string{{"/usr/sbin/kexec", "--version"}, {"/usr/sbin/grub-install", "--version"}} {
		out, err := exec.Command("chroot", append([]string{dir}, argv...)...).CombinedOutput()
		if err != nil {
			t.Errorf("%s in the overlay alone: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
	if st, err := os.Stat(tools.OVMFCode); err != nil || st.Size() < 1<<20 {
		t.Errorf("OVMF: %v", err)
	}
}
