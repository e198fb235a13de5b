package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/simtest"
)

// The 2015 path on five servers: --check changes no disk byte and shows every
// command; the run takes every server from rescue to its installed NixOS,
// which answers with the new host key nixbook recorded; a second run changes
// nothing.
func TestInstallISOFleet(t *testing.T) {
	f := start(t, 5)

	before := f.diskSums()
	check := f.nixbook(t, "install-iso.yml", "--check")
	if check.code != 0 {
		t.Fatalf("--check exit %d:\n%s", check.code, check.out)
	}
	if after := f.diskSums(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("--check changed disks:\nbefore %v\nafter  %v", before, after)
	}
	for _, want := range []string{"$ parted -s -a optimal /dev/sda", "$ mkfs.ext4", "$ curl -fL", "$ unsquashfs", "PUT /dedicated/server/"} {
		if n := strings.Count(check.out, want); n < 5 {
			t.Errorf("--check shows %q %d times, want once per host:\n%s", want, n, check.out)
		}
	}

	r := f.nixbook(t, "install-iso.yml")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.out)
	}
	for _, h := range f.names() {
		if m := f.Mode(h); m != sim.ModeDisk {
			t.Errorf("%s is in %s mode, want disk: %+v", h, m, f.Status(h))
		}
		if rec, live := f.recordedKey(t, h), f.liveKey(t, h); rec != live {
			t.Errorf("%s: nixbook recorded %s, the installed system serves %s", h, rec, live)
		}
		if osr := f.osRelease(t, h); !strings.Contains(osr, "ID=nixos") || strings.Contains(osr, "installer") {
			t.Errorf("%s does not answer as an installed NixOS:\n%s", h, osr)
		}
		if c := r.recap(t, h); c["failed"] != 0 || c["changed"] < 6 {
			t.Errorf("%s recap %v", h, c)
		}
	}

	again := f.nixbook(t, "install-iso.yml")
	if again.code != 0 {
		t.Fatalf("second run exit %d:\n%s", again.code, again.out)
	}
	for _, h := range f.names() {
		if c := again.recap(t, h); c["changed"] != 0 {
			t.Errorf("second run changed %s: %v\n%s", h, c, again.out)
		}
	}
	if n := strings.Count(again.out, "already runs the installed NixOS"); n != 5 {
		t.Errorf("install's own check reported %d installed hosts, want 5:\n%s", n, again.out)
	}
}

// What must stop a server before any change, and what must be explained.
func TestInstallISORefusals(t *testing.T) {
	f := start(t, 3, simtest.WithOverrides(&sim.Overrides{Hosts: map[string]sim.HostOverride{
		"ks1": {Data: "old-os"},    // a disk that holds an OS
		"ks2": {DiskSize: "2GiB"},  // too small for the layout
		"ks3": {Mode: "installer"}, // not in rescue: the API is needed
	}}))

	// Data and no wipe: refused before any change, in --check and for real.
	sums := f.DiskSHA256("ks1")
	for _, args := range [][]string{{"--check"}, nil} {
		r := f.nixbook(t, "install-iso.yml", append([]string{"-l", "ks1"}, args...)...)
		if r.code != 2 || !strings.Contains(r.out, f.Host("ks1").DiskIDs[0]+" holds an msdos partition table") || !strings.Contains(r.out, "set wipe: true") {
			t.Errorf("%v: exit %d, want the refusal:\n%s", args, r.code, r.out)
		}
	}
	if got := f.DiskSHA256("ks1"); fmt.Sprint(got) != fmt.Sprint(sums) {
		t.Error("a refused disk was changed")
	}

	// Too small: the check says so with the numbers.
	// (The fleet sizes each host's layout to its disk; the playbook's own defaults do not fit.)
	r := f.nixbook(t, "install-iso.yml", "-l", "ks2", "--check", "-e", "system_size=30GiB")
	if r.code != 2 || !strings.Contains(r.out, f.Host("ks2").DiskIDs[0]+" is 2.0 GiB; the layout needs") {
		t.Errorf("too small disk: exit %d:\n%s", r.code, r.out)
	}

	// Bad API credentials: the error names the call and OVH's message, and
	// the secret is never shown.
	r = f.nixbook(t, "install-iso.yml", "-l", "ks3", "--check", "-e", "ovh_application_secret=not-the-secret")
	if r.code != 2 || !strings.Contains(r.out, "/dedicated/server/") || !strings.Contains(r.out, "Invalid signature") {
		t.Errorf("bad credentials: exit %d:\n%s", r.code, r.out)
	}
	if strings.Contains(r.out, "not-the-secret") {
		t.Error("the secret appears in the output")
	}
}

// A server rebooted in the middle of the run (its rescue RAM disk, mounts and
// chroot gone) is finished by simply running the playbook again. With wipe:
// true the rerun resumes the reinstall it began: what the first run made is
// its own, not an earlier system to erase.
func TestInstallISORecoversAfterKill(t *testing.T) {
	f := start(t, 1)
	done := make(chan run, 1)
	go func() { done <- f.nixbook(t, "install-iso.yml", "-e", "wipe=true") }()
	// Kill the server while it unpacks the store.
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		log, _ := os.ReadFile(filepath.Join(f.logs, "ks1.log"))
		if strings.Contains(string(log), "unsquashfs -f") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.Reboot("ks1", sim.ModeRescue)
	if r := <-done; r.code == 0 {
		t.Fatalf("the interrupted run succeeded:\n%s", r.out)
	}
	if err := f.WaitSSH(time.Minute, "ks1"); err != nil {
		t.Fatal(err)
	}
	r := f.nixbook(t, "install-iso.yml", "-e", "wipe=true")
	if r.code != 0 || f.Mode("ks1") != sim.ModeDisk {
		t.Fatalf("rerun: exit %d, mode %s:\n%s", r.code, f.Mode("ks1"), r.out)
	}
	if log, _ := os.ReadFile(filepath.Join(f.logs, "ks1.log")); strings.Contains(string(log), "erase "+f.Host("ks1").DiskIDs[0]) || !strings.Contains(string(log), "partition "+f.Host("ks1").DiskIDs[0]) {
		t.Errorf("the rerun did not resume the reinstall it began:\n%s", log)
	}
}

// A configuration that names the NIC as the rescue predicted it, on a server
// where NixOS calls it something else, never comes back: the install step
// says so plainly instead of hanging.
func TestInstallISOWrongNICIsCaught(t *testing.T) {
	f := start(t, 1, simtest.WithOverrides(&sim.Overrides{Hosts: map[string]sim.HostOverride{
		"ks1": {NIC: "enp3s0", Predicted: "eno1"},
	}}))
	r := f.nixbook(t, "install-iso.yml", "-e", "nic_naming=predictable", "-e", "install_timeout=20s")
	if r.code != 2 || !strings.Contains(r.out, "did not answer SSH within") {
		t.Fatalf("exit %d, want the install step to fail plainly:\n%s", r.code, r.out)
	}
	if st := f.Status("ks1"); st.SSH || !strings.Contains(st.Why, "enp3s0") {
		t.Errorf("status %+v, want no SSH because of the NIC name", st)
	}
}
