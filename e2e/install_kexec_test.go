package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/simtest"
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

// The installer's network after a kexec comes up otherwise than the
// rescue's (failure mode 2): without its IPv4 default route (ks2), without
// IPv6 (ks3), on a new DHCP address when the rescue's was a lease (ks4, its
// lease left a lease): nixbook finds each installer at its other address,
// says what happened, gives it the rescue's network again and finishes the
// install. ks1's rescue took its address by DHCP too, but nixbook made the
// lease static before the kexec (keep_lease), so the installer kept it
// although DHCP handed out another. ks5's installer comes up on a new lease
// and without IPv6: it answers nowhere nixbook knows, and the failure says
// how to find it.
func TestKexecNetworkThatComesUpOtherwise(t *testing.T) {
	f := start(t, 5, simtest.WithOverrides(&sim.Overrides{Hosts: map[string]sim.HostOverride{
		"ks1": {RescueNetwork: sim.RescueDHCP, KexecNetwork: sim.KexecNewDHCPAddress},
		"ks2": {KexecNetwork: sim.KexecNoDefaultRoute},
		"ks3": {KexecNetwork: sim.KexecNoIPv6},
		"ks4": {RescueNetwork: sim.RescueDHCP, KexecNetwork: sim.KexecNewDHCPAddress},
		"ks5": {RescueNetwork: sim.RescueDHCP, KexecNetwork: sim.KexecNewDHCPAddress + "," + sim.KexecNoIPv6},
	}}))
	args := []string{"-e", "fs_layout=ext4"}
	r := f.nixbook(t, "install.yml", append(args, "-l", "ks4,ks5", "-e", "kexec_keep_lease=false", "-e", "kexec_timeout=1m")...)
	if r.code != 2 || r.recap(t, "ks4")["failed"] != 0 || r.recap(t, "ks5")["failed"] != 1 {
		t.Fatalf("ks4, ks5: exit %d, want ks5 alone failed:\n%s", r.code, r.out)
	}
	ks5, _ := f.Sim().Host("ks5")
	if want := fmt.Sprintf("did not come back as the NixOS installer within 1m, neither at %s nor at %s", ks5.Addr(), ks5.IPv6().Addr()); !strings.Contains(r.out, want) ||
		!strings.Contains(r.out, "failed: [ks5] Boot the NixOS installer") ||
		!strings.Contains(r.out, "`ip addr` and `ip route` there say where it is") {
		t.Errorf("ks5's failure does not say %q and how to find the installer:\n%s", want, r.out)
	}
	if st := f.Status("ks5"); st.Mode != sim.ModeInstaller || !strings.Contains(st.Why, "a new DHCP lease") {
		t.Errorf("ks5: %+v", st)
	}
	if r := f.nixbook(t, "install.yml", append(args, "-l", "ks1,ks2,ks3", "-e", "kexec_timeout=2m")...); r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.out)
	}
	ks1, _ := f.Sim().Host("ks1")
	ks4, _ := f.Sim().Host("ks4")
	want := map[string][]string{
		"ks1": {"the rescue's DHCP lease " + ks1.IPv4().String() + " is static now: the installer keeps it"},
		"ks2": {"the installer came up without the IPv4 default route via " + f.Sim().Gateway4().String(), "the installer answered at "},
		"ks3": {"the installer came up without the rescue's IPv6 address"},
		"ks4": {"(a new DHCP lease?) instead of the rescue's " + ks4.IPv4().String(), "the installer answered at " + ks4.IPv6().Addr().String()},
	}
	for _, h := range f.names()[:4] {
		log, _ := os.ReadFile(filepath.Join(f.logs, h+".log"))
		if m := f.Mode(h); m != sim.ModeDisk {
			t.Errorf("%s is in %s mode, want disk: %+v", h, m, f.Status(h))
		}
		if !strings.Contains(f.osRelease(t, h), "ID=nixos") {
			t.Errorf("%s does not answer as NixOS", h)
		}
		// And the installed system answers over IPv6 too: ks3's IPv6 came
		// back before the install read the network.
		for _, w := range append(want[h], "IPv6 works: "+h+" answers at ") {
			if !strings.Contains(string(log), w) {
				t.Errorf("%s: the run does not say %q:\n%s", h, w, log)
			}
		}
		if h == "ks1" && strings.Contains(string(log), "the installer came up") {
			t.Errorf("ks1's installer did not keep its address:\n%s", log)
		}
	}
}

// A payload of realistic size (payload_padding): the kexec tarball weighs
// 600 MiB more and unpacks to as much again. ks1's 1 GiB RAM disk cannot
// hold both: nixbook refuses before the download and the kexec, and the
// server stays in the rescue. ks2's 2 GiB RAM disk can: it downloads it all
// and installs.
func TestKexecPayloadOfRealisticSize(t *testing.T) {
	f := start(t, 2, simtest.WithOverrides(&sim.Overrides{
		PayloadPadding: "600MiB",
		Hosts:          map[string]sim.HostOverride{"ks2": {RAMDisk: "2GiB"}},
	}))
	before := f.DiskSHA256("ks1")
	r := f.nixbook(t, "install.yml", "-e", "fs_layout=ext4")
	if r.code != 2 {
		t.Fatalf("exit %d, want 2 (ks1 refused):\n%s", r.code, r.out)
	}
	for _, want := range []string{
		"failed: [ks1] Boot the NixOS installer",
		"install-iso.yml",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("the run does not say %q:\n%s", want, r.out)
		}
	}
	// The stand-in tarball weighs a MiB or so before its padding.
	refusal := regexp.MustCompile(`failed: \[ks1\] Boot the NixOS installer: refused before the kexec, the host stays in the rescue system: ` +
		`the kexec installer does not fit: kexec.tar.gz is 60\d\.\d MiB and unpacks to 60\d\.\d MiB more; /root/kexec has 10\d\d\.\d MiB available \(1\.\d GiB needed\)`)
	if !refusal.MatchString(r.out) {
		t.Errorf("the run does not say why ks1 is refused:\n%s", r.out)
	}
	if m := f.Mode("ks1"); m != sim.ModeRescue || fmt.Sprint(f.DiskSHA256("ks1")) != fmt.Sprint(before) {
		t.Errorf("ks1, refused, changed: mode %s", m)
	}
	if log, _ := os.ReadFile(filepath.Join(f.logs, "ks1.log")); strings.Contains(string(log), "downloading ") {
		t.Errorf("ks1 downloaded although it was refused:\n%s", log)
	}
	if m := f.Mode("ks2"); m != sim.ModeDisk || !strings.Contains(f.osRelease(t, "ks2"), "ID=nixos") {
		t.Errorf("ks2 is in %s mode, want its installed NixOS: %+v", m, f.Status("ks2"))
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
