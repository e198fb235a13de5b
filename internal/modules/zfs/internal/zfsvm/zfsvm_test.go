package zfsvm

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/transport"
)

func TestVMHasZFSAndDisks(t *testing.T) {
	vm := StartWith(t, Options{Disks: 2, DiskSize: 256 << 20})
	t.Logf("image %s\n%s", vm.Image.Dir, vm.Image.Manifest)

	if got := vm.Run(t, "zpool", "version"); !strings.Contains(got, "zfs-kmod-2.1") {
		t.Errorf("zpool version = %q, want the 2.1 kernel module loaded", got)
	}
	for _, d := range vm.Disks {
		size := strings.TrimSpace(vm.Run(t, "blockdev", "--getsize64", d.Path))
		if size != "268435456" {
			t.Errorf("%s: size %s, want 268435456", d.Path, size)
		}
		if got := strings.TrimSpace(vm.Run(t, "readlink", "-f", d.ByID)); got != d.Path {
			t.Errorf("%s resolves to %q, want %s (udev makes by-id links)", d.ByID, got, d.Path)
		}
	}
	// sh is a real shell: util-linux's mount, not busybox's applet.
	if got := vm.Run(t, "sh", "-c", "mount --version"); !strings.Contains(got, "util-linux") {
		t.Errorf("mount --version = %q", got)
	}

	// Writes reach the disk image on this machine.
	vm.Run(t, "sh", "-c", "printf nixbook-zfsvm | dd of=/dev/vdb bs=512 seek=1 conv=fsync 2>/dev/null")
	b, err := os.ReadFile(vm.Disks[1].Image)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b[512 : 512+13]); got != "nixbook-zfsvm" {
		t.Errorf("disk image holds %q at 512", got)
	}

	// A second connection checks the pinned host key too.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := vm.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Run(ctx, transport.Cmd{Args: []string{"cat", "/etc/hostid"}})
	if err != nil || len(res.Stdout) != 4 {
		t.Errorf("hostid: %q, %v", res.Stdout, err)
	}

	h := vm.Host(t)
	f := h.Facts()
	if len(f.Disks) != 2 || f.Disks[0].Path != "/dev/vda" || len(f.Disks[0].ByID) == 0 || f.Disks[0].ByID[0] != vm.Disks[0].ByID {
		t.Errorf("facts disks = %+v", f.Disks)
	}
	if f.Kernel == "" || f.MemoryMB < 800 {
		t.Errorf("facts kernel %q, memory %d MB", f.Kernel, f.MemoryMB)
	}
	t.Logf("boot took %s", vm.BootTime)
}
