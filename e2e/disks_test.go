package e2e

import (
	"strings"
	"testing"

	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/simtest"
)

// A two-disk host whose second disk dies after the install comes up from
// the first: its GRUB reads the /boot beside it and the lost /boot-2 does
// not hold the boot (nofail). The stock inventory names the disks by id,
// so the layout, GRUB's devices and the disk boot's check all follow them.
func TestATwoDiskHostSurvivesALostDisk(t *testing.T) {
	f := start(t, 1, simtest.WithOverrides(&sim.Overrides{Hosts: map[string]sim.HostOverride{
		"ks1": {DiskCount: 2, LoseDisk: "sdb"},
	}}))
	r := f.nixbook(t, "install.yml", "-e", "fs_layout=ext4", "-e", "install_timeout=90s")
	if r.code != 0 || f.Mode("ks1") != sim.ModeDisk {
		t.Fatalf("exit %d, mode %s, status %+v:\n%s", r.code, f.Mode("ks1"), f.Status("ks1"), r.out)
	}
	st := f.Status("ks1")
	if st.LostDisk != "sdb" || strings.Contains(st.Disks, "sdb") {
		t.Fatalf("the host did not lose sdb: %+v", st)
	}
	if got := f.sh(t, "ks1", "ls /sys/block; cat /etc/nixos/configuration.nix"); !strings.Contains(got, "mirroredBoots") || !strings.Contains(got, `fileSystems."/boot-2".options = [ "nofail" ];`) {
		t.Errorf("the installed system:\n%s", got)
	}
}

// A server whose disks sit behind a RAID controller NixOS's initrd lacks
// by default: facts find its driver in sysfs, configuration.nix puts it in
// the initrd, and the installed system finds its root.
func TestARAIDControllerGetsItsDriverIntoTheInitrd(t *testing.T) {
	f := start(t, 1, simtest.WithOverrides(&sim.Overrides{Hosts: map[string]sim.HostOverride{
		"ks1": {Controller: "megaraid_sas"},
	}}))
	r := f.nixbook(t, "install.yml", "-e", "fs_layout=ext4", "-e", "install_timeout=90s")
	if r.code != 0 || f.Mode("ks1") != sim.ModeDisk {
		t.Fatalf("exit %d, mode %s, status %+v:\n%s", r.code, f.Mode("ks1"), f.Status("ks1"), r.out)
	}
	if got := f.sh(t, "ks1", "cat /etc/nixos/configuration.nix"); !strings.Contains(got, `"megaraid_sas" ];`) || !strings.Contains(got, "The disks' controller needs megaraid_sas") {
		t.Errorf("configuration.nix does not load the controller's driver:\n%s", got)
	}
}
