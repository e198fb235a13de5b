package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/simtest"
)

// What must stop a server comes before anything changes on any server. A
// host whose ovh_service names another server of the account (a copy-paste
// typo) never gets that server rebooted, and a server OVH flagged is never
// driven: both are refused before any write through the API, in --check and
// for real, naming the host, the service, both addresses and the inventory
// line. A disk holding an old OS without wipe: true is refused before the
// kexec, not after it; a server with too little RAM for the kexec installer
// is refused before it is rebooted into the rescue.
func TestRefusalsComeFirst(t *testing.T) {
	f := start(t, 4, simtest.WithOverrides(&sim.Overrides{Hosts: map[string]sim.HostOverride{
		// Not in the rescue: reaching it takes the API.
		"ks1": {Mode: "installer"},
		"ks2": {Mode: "installer", OVHState: "hacked"},
		"ks3": {Data: "old-os"},
		"ks4": {Mode: "disk", Data: "old-os", RAM: "1GiB"},
	}}))
	ks1, ks2 := f.Host("ks1"), f.Host("ks2")
	boot1, boot2 := f.BootID("ks1"), f.BootID("ks2")
	// ks4's running Debian writes to its own disk; the others run from RAM.
	sums := map[string]map[string]string{}
	for _, h := range []string{"ks1", "ks2", "ks3"} {
		sums[h] = f.DiskSHA256(h)
	}

	typo := regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf(
		"ks1: refusing to drive OVH service %s: it is not this host (nixbook dials %s; OVH gives %s the address %s and the blocks %s/32",
		ks2.Service, ks1.Addr, ks2.Service, ks2.Addr, ks2.Addr)) + `.*; check ovh_service or the host's address at .*fleet\.yml:\d+`)
	for _, playbook := range []string{"install.yml", "install-iso.yml"} {
		for _, args := range [][]string{{"--check"}, nil} {
			r := f.nixbook(t, playbook, append([]string{"-l", "ks1", "-e", "ovh_service=" + ks2.Service}, args...)...)
			if r.code != 2 || !typo.MatchString(r.out) {
				t.Errorf("%s %v with ks2's service for ks1: exit %d, want the refusal %q:\n%s", playbook, args, r.code, typo, r.out)
			}
		}
	}

	f.refusedBeforeAnyChange(t, "ks2", "install.yml", []string{"-l", "ks2"},
		fmt.Sprintf(`ks2: refusing to drive OVH service %s: its state is "hacked", not "ok"`, ks2.Service))
	f.refusedBeforeAnyChange(t, "ks3", "install.yml", []string{"-l", "ks3"},
		"failed: [ks3] preflight: Partition the disks: "+f.Host("ks3").DiskIDs[0]+" holds an msdos partition table", "[ks3] Boot the NixOS installer")
	f.refusedBeforeAnyChange(t, "ks4", "install.yml", []string{"-l", "ks4", "-e", "wipe=true"},
		"failed: [ks4] preflight: Boot the NixOS installer: ks4 has 1.0 GiB of RAM, the kexec installer needs at least 1.5 GiB")
	if f.Mode("ks3") != sim.ModeRescue || f.Mode("ks4") != sim.ModeDisk {
		t.Errorf("refused servers changed systems: ks3 %s, ks4 %s", f.Mode("ks3"), f.Mode("ks4"))
	}

	for _, h := range f.Hosts {
		for _, c := range f.Emulator.Calls(h.Service) {
			if c.Method != "GET" {
				t.Errorf("the API received %s %s", c.Method, c.Path)
			}
		}
	}
	if f.BootID("ks1") != boot1 || f.BootID("ks2") != boot2 {
		t.Error("a refused server was rebooted")
	}
	for h, sum := range sums {
		if fmt.Sprint(f.DiskSHA256(h)) != fmt.Sprint(sum) {
			t.Errorf("the disks of %s, refused, changed", h)
		}
	}
}

// The README's first command, a dry run of each stock playbook, plans every
// fresh server to the end from the rescue: what would run after the kexec or
// in the chroot is planned there or reported as unknown until applied, never
// failed, and nothing on the servers changes.
func TestDryRunOfTheStockPlaybooks(t *testing.T) {
	f := start(t, 2)
	sums, boots := f.diskSums(), map[string]string{}
	for _, h := range f.names() {
		boots[h] = f.BootID(h)
	}
	last := map[string]string{"install.yml": "Install NixOS and boot it", "install-iso.yml": "Boot the installed system"}
	summary := regexp.MustCompile(`(?m)^2 hosts: \d+ would change, \d+ unknown until applied, 0 failed$`)
	for _, playbook := range []string{"install.yml", "install-iso.yml"} {
		r := f.nixbook(t, playbook, "--check")
		if r.code != 0 || !summary.MatchString(r.out) {
			t.Errorf("%s --check: exit %d, want 0 and the closing line %q:\n%s", playbook, r.code, summary, r.out)
		}
		for _, h := range f.names() {
			if want := fmt.Sprintf("would change: [%s] %s", h, last[playbook]); !strings.Contains(r.out, want) {
				t.Errorf("%s --check: %s not planned to the end (no %q):\n%s", playbook, h, want, r.out)
			}
			if c := r.recap(t, h); c["failed"] != 0 || c["would_change"] == 0 {
				t.Errorf("%s --check: recap of %s: %v", playbook, h, c)
			}
		}
		for _, line := range strings.Split(r.out, "\n") {
			if strings.HasPrefix(line, " ") && !regexp.MustCompile(`^    ks\d+ \|`).MatchString(line) {
				t.Errorf("%s --check: a detail line without its host: %q", playbook, line)
			}
		}
	}
	if install := f.nixbook(t, "install.yml", "--check"); !strings.Contains(install.out, "unknown until applied: [ks1] Create the pool and datasets: zpool not found: ZFS needs") {
		t.Errorf("install.yml --check: the pool is not reported unknown until applied:\n%s", install.out)
	}

	// --by-host groups each server's plan.
	r := f.nixbook(t, "install.yml", "--check", "--by-host")
	i1, i2 := strings.Index(r.out, "HOST [ks1]"), strings.Index(r.out, "HOST [ks2]")
	if r.code != 0 || i1 < 0 || i2 < i1 || strings.Contains(r.out[i1:i2], "[ks2]") {
		t.Errorf("--by-host: exit %d, want ks1's results, then ks2's:\n%s", r.code, r.out)
	}

	if fmt.Sprint(f.diskSums()) != fmt.Sprint(sums) {
		t.Error("a dry run changed a disk")
	}
	for _, h := range f.names() {
		if f.BootID(h) != boots[h] {
			t.Errorf("a dry run rebooted %s", h)
		}
	}
	// The API was read (the preflight's identity check, the netboot the
	// install would set), never written: a dry run has only the reader.
	reads := 0
	for _, h := range f.Hosts {
		for _, c := range f.Emulator.Calls(h.Service) {
			if c.Method != "GET" {
				t.Errorf("a dry run sent %s %s", c.Method, c.Path)
			}
			reads++
		}
	}
	if reads == 0 {
		t.Error("a dry run read nothing of the OVH API: the check above proves nothing")
	}
}

// A wipe wipes: reinstalling a server that holds an earlier install with
// wipe: true leaves nothing of it, while a server that runs its installed
// NixOS is left alone unless reinstall: true, and reinstall: true alone
// refuses to erase its disks before anything changes.
func TestReinstallWithWipeErasesTheEarlierSystem(t *testing.T) {
	f := start(t, 1)
	ext4 := []string{"-e", "fs_layout=ext4"}
	if r := f.nixbook(t, "install.yml", ext4...); r.code != 0 {
		t.Fatalf("first install: exit %d:\n%s", r.code, r.out)
	}
	// What the old system's users leave behind, on its disk.
	f.sh(t, "ks1", "echo old > /root/old-marker && mkdir -p /home/alice && echo old > /home/alice/old-marker && sync")
	// They are on the disk: a reboot keeps them.
	f.Reboot("ks1", sim.ModeDisk)
	if err := f.WaitSSH(time.Minute, "ks1"); err != nil {
		t.Fatal(err)
	}
	if got := f.sh(t, "ks1", "cat /root/old-marker /home/alice/old-marker"); got != "old\nold\n" {
		t.Fatalf("the markers did not survive a reboot: %q", got)
	}

	r := f.nixbook(t, "install.yml", ext4...)
	if r.code != 0 || r.recap(t, "ks1")["changed"] != 0 || !strings.Contains(r.out, "[ks1] Say what happens to this server: runs its installed NixOS: left alone") {
		t.Errorf("rerun on the installed system: exit %d, want it left alone:\n%s", r.code, r.out)
	}

	f.refusedBeforeAnyChange(t, "ks1", "install.yml", append([]string{"-e", "reinstall=true"}, ext4...),
		"failed: [ks1] preflight: Partition the disks: "+f.Host("ks1").DiskIDs[0]+" holds an earlier install of this layout")

	r = f.nixbook(t, "install.yml", append([]string{"-e", "reinstall=true", "-e", "wipe=true", "--check"}, ext4...)...)
	if r.code != 0 || !strings.Contains(r.out, "reinstall: true, so it is rebooted into the rescue and reinstalled, its disks erased (wipe: true)") ||
		!strings.Contains(r.out, "would change: [ks1] Boot the rescue system") {
		t.Errorf("reinstall --check: exit %d, want the plan to reboot into the rescue:\n%s", r.code, r.out)
	}
	r = f.nixbook(t, "install.yml", append([]string{"-e", "reinstall=true", "-e", "wipe=true"}, ext4...)...)
	if r.code != 0 || f.Mode("ks1") != sim.ModeDisk {
		t.Fatalf("reinstall with wipe: exit %d, mode %s:\n%s", r.code, f.Mode("ks1"), r.out)
	}
	if log, _ := os.ReadFile(filepath.Join(f.logs, "ks1.log")); !strings.Contains(string(log), "erase "+f.Host("ks1").DiskIDs[0]) {
		t.Errorf("the reinstall did not erase the disk:\n%s", log)
	}
	if left := f.sh(t, "ks1", "ls /root/old-marker /home/alice/old-marker 2>/dev/null || true"); strings.TrimSpace(left) != "" {
		t.Errorf("files of the earlier system survived the wipe: %s", left)
	}
}

// The most common start: a server rented with OVH's Debian, answering SSH
// on its disk system. Without wipe: true it is refused before anything
// changes; with it, the stock playbook takes it through the rescue (the
// API) to NixOS, and nothing of the Debian survives.
func TestFromAReachableDebian(t *testing.T) {
	f := start(t, 1, simtest.WithOverrides(&sim.Overrides{Hosts: map[string]sim.HostOverride{
		"ks1": {Mode: "disk", Data: "old-os"},
	}}))
	if got := f.osRelease(t, "ks1"); !strings.Contains(got, "ID=debian") {
		t.Fatalf("ks1 does not answer as Debian:\n%s", got)
	}
	ext4 := []string{"-e", "fs_layout=ext4"}
	f.refusedBeforeAnyChange(t, "ks1", "install.yml", ext4,
		"failed: [ks1] preflight: Partition the disks: "+f.Host("ks1").DiskIDs[0]+" holds an msdos partition table")
	if f.Mode("ks1") != sim.ModeDisk {
		t.Fatalf("a refused server was rebooted into %s", f.Mode("ks1"))
	}
	r := f.nixbook(t, "install.yml", append(ext4, "-e", "wipe=true")...)
	if r.code != 0 || f.Mode("ks1") != sim.ModeDisk {
		t.Fatalf("with wipe: exit %d, mode %s:\n%s", r.code, f.Mode("ks1"), r.out)
	}
	if got := f.osRelease(t, "ks1"); !strings.Contains(got, "ID=nixos") {
		t.Errorf("ks1 does not answer as NixOS:\n%s", got)
	}
	if left := f.sh(t, "ks1", "ls /root/data.txt /home/debian 2>/dev/null || true"); strings.TrimSpace(left) != "" {
		t.Errorf("the Debian's files survived: %s", left)
	}
}

// Never the wrong disk: on a server whose controller names its disks
// otherwise after the kexec (sda and sdb swap), an inventory that names
// /dev/sda means the disk that was /dev/sda when the reinstall began. The
// layout follows that disk, the other disk is never written, and the
// installed system boots.
func TestDiskNamesThatMoveAreFollowed(t *testing.T) {
	f := start(t, 1, simtest.WithOverrides(&sim.Overrides{Hosts: map[string]sim.HostOverride{
		"ks1": {DiskCount: 2, Reorder: ptr(true)},
	}}))
	before := f.DiskSHA256("ks1")
	r := f.nixbook(t, "install.yml", "-e", "fs_layout=ext4", "-e", `{"disks":["/dev/sda"]}`)
	if r.code != 0 || f.Mode("ks1") != sim.ModeDisk {
		t.Fatalf("exit %d, mode %s:\n%s", r.code, f.Mode("ks1"), r.out)
	}
	if !strings.Contains(r.out, "/dev/sda when the reinstall began") {
		t.Errorf("the run does not say the disk names moved:\n%s", r.out)
	}
	after := f.DiskSHA256("ks1")
	if after["sda"] == before["sda"] || after["sdb"] != before["sdb"] {
		t.Errorf("the layout went to the wrong disk: sda changed %v, sdb changed %v", after["sda"] != before["sda"], after["sdb"] != before["sdb"])
	}
	if got := f.osRelease(t, "ks1"); !strings.Contains(got, "ID=nixos") {
		t.Errorf("ks1 does not answer as NixOS:\n%s", got)
	}
}

func ptr[T any](v T) *T { return &v }

// refusedBeforeAnyChange runs playbook with args in --check and for real:
// both must fail (exit 2) with want in the output and none of forbid, and
// host must not have been rebooted.
func (f *fleet) refusedBeforeAnyChange(t *testing.T, host, playbook string, args []string, want string, forbid ...string) {
	t.Helper()
	boot := f.BootID(host)
	for _, mode := range [][]string{{"--check"}, nil} {
		r := f.nixbook(t, playbook, append(slices.Clone(args), mode...)...)
		ok := r.code == 2 && strings.Contains(r.out, want)
		for _, s := range forbid {
			ok = ok && !strings.Contains(r.out, s)
		}
		if !ok {
			t.Errorf("%s %v %v: exit %d, want the refusal %q (and none of %q):\n%s", playbook, args, mode, r.code, want, forbid, r.out)
		}
	}
	if f.BootID(host) != boot {
		t.Errorf("%s was rebooted by a refused run", host)
	}
}
