package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/sim"
)

// The 2024 path on five servers (the ext4 layout: this kernel has no ZFS; the
// ZFS layout is proven on real ZFS in internal/modules/zfs): rescue, kexec into the
// installer with the same host key, install, and the installed system's new
// key recorded. One server's kexec never comes back: it fails with advice
// while the others finish.
func TestInstallKexecFleet(t *testing.T) {
	f := start(t, 5)
	f.InjectFault("ks5", sim.FaultKexecHangs)
	args := []string{"-e", "fs_layout=ext4", "-e", "kexec_timeout=30s"}

	before := f.diskSums()
	check := f.nixbook(t, "install.yml", append(args, "--check")...)
	if check.code != 0 {
		t.Fatalf("--check exit %d:\n%s", check.code, check.out)
	}
	if after := f.diskSums(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("--check changed disks")
	}
	if n := strings.Count(check.out, "kexec/run"); n < 5 {
		t.Errorf("--check shows kexec/run %d times, want once per host:\n%s", n, check.out)
	}

	rescueKeys := map[string]string{}
	for _, h := range f.names() {
		rescueKeys[h] = f.liveKey(t, h)
	}
	r := f.nixbook(t, "install.yml", args...)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2 (ks5 fails):\n%s", r.code, r.out)
	}
	for _, h := range f.names()[:4] {
		if m := f.Mode(h); m != sim.ModeDisk {
			t.Errorf("%s is in %s mode, want disk: %+v", h, m, f.Status(h))
		}
		if rec, live := f.recordedKey(t, h), f.liveKey(t, h); rec != live || live == rescueKeys[h] {
			t.Errorf("%s: recorded %s, live %s, rescue had %s", h, rec, live, rescueKeys[h])
		}
		// The key changed once, at the installed system's boot: kexec kept the rescue's.
		if n := strings.Count(r.out, "["+h+"] "+h+": new system, host key replaced"); n != 1 {
			t.Errorf("%s: host key replaced %d times, want once:\n%s", h, n, r.out)
		}
		if !strings.Contains(f.osRelease(t, h), "ID=nixos") {
			t.Errorf("%s does not answer as NixOS", h)
		}
	}
	if !strings.Contains(r.out, "failed: [ks5] Boot the NixOS installer") || !strings.Contains(r.out, "install-iso.yml") {
		t.Errorf("ks5 did not fail with the advice:\n%s", r.out)
	}
	if c := r.recap(t, "ks5"); c["failed"] != 1 {
		t.Errorf("ks5 recap %v", c)
	}
}

// A kexec that never comes back, with kexec_fallback: iso: the server is
// taken back to the rescue through the API and installed through the ISO
// path instead, ending on its installed NixOS; the ZFS path's later tasks
// are skipped.
func TestKexecFallsBackToTheISOPath(t *testing.T) {
	f := start(t, 1)
	f.InjectFault("ks1", sim.FaultKexecHangs)
	r := f.nixbook(t, "install.yml", "-e", "kexec_fallback=iso", "-e", "kexec_timeout=20s")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.out)
	}
	if m := f.Mode("ks1"); m != sim.ModeDisk {
		t.Fatalf("ks1 is in %s mode, want disk: %+v", m, f.Status("ks1"))
	}
	if osr := f.osRelease(t, "ks1"); !strings.Contains(osr, "ID=nixos") || strings.Contains(osr, "installer") {
		t.Errorf("ks1 does not answer as an installed NixOS:\n%s", osr)
	}
	for _, want := range []string{
		"did not come back as the NixOS installer within 20s",
		"kexec_fallback: iso, so this server is installed through the rescue system and the NixOS ISO",
		"[ks1] Unpack the ISO's store onto the rescue partition",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("the run's output lacks %q:\n%s", want, r.out)
		}
	}
	if strings.Contains(r.out, "changed: [ks1] Create the pool and datasets") || strings.Contains(r.out, "changed: [ks1] Write configuration.nix\n") {
		t.Errorf("the ZFS path went on after the fallback:\n%s", r.out)
	}
	if c := r.recap(t, "ks1"); c["failed"] != 0 || c["rescued"] != 1 {
		t.Errorf("ks1 recap %v", c)
	}
}
