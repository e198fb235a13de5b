package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovh/go-ovh/ovh"

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
	got := f.installedVM(t, "ks1", rescueKey, "hostid")
	hostID := strings.Fields(got)[len(strings.Fields(got))-1]

	// The pool left imported under another host id and the power cut:
	// stage 1 imports it anyway, forced, as NixOS's does with
	// boot.zfs.forceImportRoot at its default (true).
	booted := f.BootID("ks1")
	f.Reboot("ks1", sim.ModeRescue)
	waitBoot(t, f, "ks1", booted)
	rescueKnown := filepath.Join(t.TempDir(), "known_hosts")
	if got := f.shKnown(t, "ks1", rescueKnown, "zgenhostid -f 0badcafe && zpool import -f -N rpool && zdb -C rpool | grep -w hostid"); !strings.Contains(got, "195939070") {
		t.Fatalf("the rescue imported rpool under host id %q, want 0badcafe (195939070)", got)
	}
	booted = f.BootID("ks1")
	f.Reboot("ks1", sim.ModeDisk)
	waitBoot(t, f, "ks1", booted)
	if got := f.sh(t, "ks1", "zpool list -H -o health rpool; hostid"); got != "ONLINE\n"+hostID+"\n" {
		t.Errorf("after a boot with the pool left imported elsewhere: %q, want ONLINE and host id %s", got, hostID)
	}
}

// installedVM checks that a vm host runs the system install.yml put on its
// disk, as nixbook left it: in disk mode, booted by the firmware and GRUB
// (its init said so on the console), answering as NixOS with the host key
// nixbook recorded (not the rescue's), its root the imported ZFS pool. It
// returns what those checks and then command print.
func (f *fleet) installedVM(t *testing.T, host, rescueKey, command string) string {
	t.Helper()
	if m := f.Mode(host); m != sim.ModeDisk {
		t.Fatalf("%s is in %s mode, want disk: %+v", host, m, f.Status(host))
	}
	if c := f.console(t, host); !strings.Contains(c, "mode disk") {
		t.Errorf("the console shows no boot of the installed system:\n%s", c)
	}
	if rec, live := f.recordedKey(t, host), f.liveKey(t, host); rec != live || live == rescueKey {
		t.Errorf("recorded %s, live %s, rescue had %s", rec, live, rescueKey)
	}
	if !strings.Contains(f.osRelease(t, host), "ID=nixos") {
		t.Errorf("%s does not answer as NixOS", host)
	}
	health := "ONLINE"
	if f.Status(host).LostDisk != "" {
		health = "DEGRADED" // a mirror with one disk left
	}
	got := f.sh(t, host, "cat /proc/cmdline; zpool list -H -o name,health; findmnt -n -o SOURCE,FSTYPE /sysroot; "+command)
	for _, want := range []string{"root=ZFS=rpool/root/nixos", "rpool\t" + health, "rpool/root/nixos zfs"} {
		if !strings.Contains(got, want) {
			t.Errorf("the installed system's boot: no %q in\n%s", want, got)
		}
	}
	return got
}

// waitBoot waits for a host to come back from a reboot with a new boot id
// and answer SSH.
func waitBoot(t *testing.T, f *fleet, host, before string) {
	t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for id := f.BootID(host); id == "" || id == before; id = f.BootID(host) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not boot again: %+v\nconsole:\n%s", host, f.Status(host), f.console(t, host))
		}
		time.Sleep(time.Second)
	}
	if err := f.WaitSSH(3*time.Minute, host); err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, f.console(t, host))
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

// A mirror on two disks: GRUB goes on both, each reading the /boot on its
// own disk (mirroredBoots), the pool mirrors both, and when the first disk
// dies the firmware boots the second, its pool degraded.
func TestVMInstallBIOSMirror(t *testing.T) {
	f := vmFleet(t, sim.HostOverride{DiskCount: 2, DiskSize: "4GiB"})
	r := f.nixbook(t, "install.yml")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s\nconsole:\n%s", r.code, r.out, f.console(t, "ks1"))
	}
	status := f.sh(t, "ks1", "zpool status -P rpool")
	if !strings.Contains(status, "mirror-0") {
		t.Errorf("rpool is not a mirror:\n%s", status)
	}
	for _, d := range f.Sim().Hosts()[0].Disks() {
		if !strings.Contains(status, d.ByIDPath()) {
			t.Errorf("the mirror is not on %s:\n%s", d.ByIDPath(), status)
		}
		// GRUB's boot.img in the disk's MBR, as grub-install leaves it.
		mbr := make([]byte, 512)
		img, err := os.Open(d.Image)
		if err != nil {
			t.Fatal(err)
		}
		_, err = img.ReadAt(mbr, 0)
		img.Close()
		if err != nil || !bytes.Contains(mbr, []byte("GRUB")) {
			t.Errorf("no GRUB in the MBR of %s (%v)", d.Name, err)
		}
	}
	if got := f.sh(t, "ks1", "zpool list -H -o health rpool; cat /proc/cmdline"); !strings.HasPrefix(got, "ONLINE\n") || !strings.Contains(got, "root=ZFS=rpool/root/nixos") {
		t.Errorf("the installed system's pool and boot: %q", got)
	}

	before := f.BootID("ks1")
	if err := f.Sim().Hosts()[0].PullDisk(0); err != nil {
		t.Fatal(err)
	}
	f.Reboot("ks1", sim.ModeDisk)
	waitBoot(t, f, "ks1", before)
	if got := f.sh(t, "ks1", "zpool list -H -o health rpool; ls /sys/block | grep -c vd"); got != "DEGRADED\n1\n" {
		t.Errorf("without its first disk: %q, want rpool DEGRADED on one disk", got)
	}
}

// A root pool left imported under another host id, with a configuration
// that does not force the import (boot.zfs.forceImportRoot = false): the
// installed system's stage 1 refuses the pool and the server stays off the
// network, as NixOS's does; the simulator says why. Exporting it from the
// rescue, as nixbook's own install does before its reboot, brings it back.
func TestVMStageOneRefusesAPoolInUseElsewhere(t *testing.T) {
	f := vmFleet(t, sim.HostOverride{DiskSize: "4GiB"})
	stock, err := os.ReadFile(filepath.Join("..", "internal", "playbooks", "install.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// The kexec path's nixos_config task (the ISO path's is in
	// tasks/install-iso.yml).
	const task = "\n      nixos_config:\n"
	if bytes.Count(stock, []byte(task)) != 1 {
		t.Fatalf("install.yml has not one %q", task)
	}
	dir := t.TempDir()
	playbook := filepath.Join(dir, "install.yml")
	noForce := bytes.Replace(stock, []byte(task), []byte(task+"        extra: \"boot.zfs.forceImportRoot = false;\"\n"), 1)
	if err := os.WriteFile(playbook, noForce, 0o600); err != nil {
		t.Fatal(err)
	}
	// The tasks file it imports, beside it as in the stock playbooks'.
	isoTasks, err := os.ReadFile(filepath.Join("..", "internal", "playbooks", "tasks", "install-iso.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tasks"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tasks", "install-iso.yml"), isoTasks, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := f.nixbook(t, playbook); r.code != 0 {
		t.Fatalf("exit %d:\n%s\nconsole:\n%s", r.code, r.out, f.console(t, "ks1"))
	}

	booted := f.BootID("ks1")
	f.Reboot("ks1", sim.ModeRescue)
	waitBoot(t, f, "ks1", booted)
	rescueKnown := filepath.Join(t.TempDir(), "known_hosts")
	f.shKnown(t, "ks1", rescueKnown, "zgenhostid -f 0badcafe && zpool import -f -N rpool")
	booted = f.BootID("ks1")
	f.Reboot("ks1", sim.ModeDisk)
	deadline := time.Now().Add(4 * time.Minute)
	for !strings.Contains(f.Status("ks1").Why, "stage 1") {
		if time.Now().After(deadline) {
			t.Fatalf("no stage 1 failure: %+v\nconsole:\n%s", f.Status("ks1"), f.console(t, "ks1"))
		}
		time.Sleep(time.Second)
	}
	st := f.Status("ks1")
	if st.SSH || !strings.Contains(st.Why, "cannot import the root pool rpool") || !strings.Contains(st.Why, "another system") {
		t.Errorf("status %+v", st)
	}

	// The way out: the rescue imports and exports it.
	booted = f.BootID("ks1")
	f.Reboot("ks1", sim.ModeRescue)
	waitBoot(t, f, "ks1", booted)
	f.shKnown(t, "ks1", filepath.Join(t.TempDir(), "known_hosts"), "zpool import -f -N rpool && zpool export rpool")
	booted = f.BootID("ks1")
	f.Reboot("ks1", sim.ModeDisk)
	waitBoot(t, f, "ks1", booted)
	if got := f.sh(t, "ks1", "zpool list -H -o health rpool"); got != "ONLINE\n" {
		t.Errorf("after the export: rpool %q", got)
	}
}

// The default path on a two-disk UEFI machine: OVMF boots the rescue and
// the installer (their kernels see /sys/firmware/efi), so nixbook lays out
// an ESP on each disk and configures GRUB for EFI at the removable path of
// both; the final netboot points efiBootloaderPath at it and OVMF boots the
// disk through it, though the first disk died after the install
// (lose_disk: the installed system's first boot is without it). A stale
// efiBootloaderPath, set through the API afterwards, leaves the server in
// the UEFI shell, off the network, and says why.
func TestVMInstallUEFI(t *testing.T) {
	f := vmFleet(t, sim.HostOverride{Firmware: sim.FirmwareUEFI, DiskCount: 2, DiskSize: "4GiB", LoseDisk: "vda"})
	rescueKey := f.liveKey(t, "ks1")
	if got := f.sh(t, "ks1", "test -d /sys/firmware/efi && echo uefi"); got != "uefi\n" {
		t.Fatalf("the rescue does not see UEFI: %q", got)
	}
	r := f.nixbook(t, "install.yml")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s\nconsole:\n%s", r.code, r.out, f.console(t, "ks1"))
	}
	if got := f.installedVM(t, "ks1", rescueKey, "test -d /sys/firmware/efi && echo uefi"); !strings.HasSuffix(got, "uefi\n") {
		t.Errorf("the installed system does not see UEFI:\n%s", got)
	}
	h := f.Host("ks1")
	if st, _ := f.Emulator.Server(h.Service); st.EFIBootloaderPath != `\EFI\BOOT\BOOTX64.EFI` {
		t.Errorf("efiBootloaderPath %q after the install", st.EFIBootloaderPath)
	}

	// An ESP on each disk, GRUB at the removable path of both: the machine
	// booted with its first disk gone.
	// (installedVM found the pool DEGRADED.)
	if st := f.Status("ks1"); st.LostDisk != "vda" || strings.Contains(st.Disks, "vda") {
		t.Errorf("lose_disk vda: the host lost %q and has %q", st.LostDisk, st.Disks)
	}

	creds := f.Sim().Credentials()
	client, err := ovh.NewClient(creds.Endpoint, creds.ApplicationKey, creds.ApplicationSecret, creds.ConsumerKey)
	if err != nil {
		t.Fatal(err)
	}
	const stale = `\efi\debian\grubx64.efi`
	// The API has bad days: a write carried out may be answered 504.
	for try := 0; ; try++ {
		err := client.Put("/dedicated/server/"+h.Service, map[string]any{"efiBootloaderPath": stale}, nil)
		if st, _ := f.Emulator.Server(h.Service); st.EFIBootloaderPath == stale {
			break
		}
		if try == 5 {
			t.Fatalf("efiBootloaderPath not set: %v", err)
		}
	}
	// (GRUB's own images in /boot/grub/x86_64-efi, on the ESP, follow.)
	const why = `efiBootloaderPath \efi\debian\grubx64.efi names no file on the EFI system partitions (vdb1:`
	// The API asks the host what its firmware would find.
	if st, _ := f.Emulator.Server(h.Service); st.Boot.Kernel != "efi-shell" || !strings.Contains(st.Boot.Description, why) {
		t.Errorf("the API's next boot with a stale efiBootloaderPath: %+v", st.Boot)
	}
	f.Reboot("ks1", sim.ModeDisk)
	deadline := time.Now().Add(2 * time.Minute)
	for f.Status("ks1").Mode != sim.ModeIPXE && time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}
	st := f.Status("ks1")
	if st.SSH || st.Mode != sim.ModeIPXE || !strings.Contains(st.Why, "booted the UEFI shell: "+why) {
		t.Errorf("ks1 after a reboot with a stale efiBootloaderPath: %+v", st)
	}
}
