package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/simtest"
)

// vmFleet starts one vm host (a QEMU machine with real ZFS, see sim's
// kind: vm) with the given overrides.
func vmFleet(t *testing.T, o sim.HostOverride) *fleet {
	t.Helper()
	o.Kind = sim.KindVM
	return start(t, 1, simtest.WithOverrides(&sim.Overrides{Hosts: map[string]sim.HostOverride{"ks1": o}}))
}

// The default path, end to end, on a machine whose firmware boots its disk:
// rescue (API) → real kexec into the installer with the rescue's host key →
// partition → a real ZFS pool → configuration.nix → install (real GRUB on
// the disk, an initramfs importing the pool with the configuration's host
// id) → export, netboot to disk, reboot → SeaBIOS, GRUB, the kernel, the
// pool imported, the installed host key recorded.
func TestVMInstallBIOSSingleDisk(t *testing.T) {
	f := vmFleet(t, sim.HostOverride{DiskSize: "4GiB"})
	rescueKey := f.liveKey(t, "ks1")
	r := f.nixbook(t, "install.yml")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s\nconsole:\n%s", r.code, r.out, f.console(t, "ks1"))
	}
	if m := f.Mode("ks1"); m != sim.ModeDisk {
		t.Fatalf("ks1 is in %s mode, want disk: %+v", m, f.Status("ks1"))
	}
	// The firmware booted the disk, GRUB the kernel: its init said so.
	if c := f.console(t, "ks1"); !strings.Contains(c, "mode disk") {
		t.Errorf("the console shows no boot of the installed system:\n%s", c)
	}
	if rec, live := f.recordedKey(t, "ks1"), f.liveKey(t, "ks1"); rec != live || live == rescueKey {
		t.Errorf("recorded %s, live %s, rescue had %s", rec, live, rescueKey)
	}
	if !strings.Contains(f.osRelease(t, "ks1"), "ID=nixos") {
		t.Errorf("ks1 does not answer as NixOS")
	}
	got := f.sh(t, "ks1", "cat /proc/cmdline; zpool list -H -o name,health; findmnt -n -o SOURCE,FSTYPE /sysroot; hostid")
	for _, want := range []string{"root=ZFS=rpool/root/nixos", "rpool\tONLINE", "rpool/root/nixos zfs"} {
		if !strings.Contains(got, want) {
			t.Errorf("the installed system's boot: no %q in\n%s", want, got)
		}
	}
}

// console is the end of a vm host's serial console, for failures.
func (f *fleet) console(t *testing.T, host string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.Dir, "hosts", host, "console.log"))
	if err != nil {
		return err.Error()
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
