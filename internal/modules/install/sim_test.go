package install

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/command"
	"github.com/nixbook/nixbook/internal/modules/nixosconfig"
	"github.com/nixbook/nixbook/internal/modules/partition"
	"github.com/nixbook/nixbook/internal/modules/rescue"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/runner/runnertest"
	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/simtest"
)

// TestMain lets the test binary serve as the simulated hosts' helper.
func TestMain(m *testing.M) { simtest.Main(m) }

// startFleet brings up simulated servers with the NixOS payload, so that the
// installer mode has the payload's nix-channel and nixos-install.
func startFleet(t *testing.T, hosts int) *sim.Fleet {
	t.Helper()
	for _, tool := range []string{"wipefs", "mkfs.ext4", "mkswap", "swapon"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the simulated fleet's hosts need %s: %v", tool, err)
		}
	}
	return simtest.Start(t, hosts).Sim()
}

// run runs a playbook on the fleet the way `nixbook run` does.
func run(t *testing.T, f *sim.Fleet, knownHosts, playbook string, check bool) *runnertest.Result {
	t.Helper()
	return runnertest.Run(context.Background(), t, runnertest.Config{
		Inventory: f.InventoryPath(), Playbook: playbook, KnownHosts: knownHosts,
		Registry: modules.NewRegistry(Spec, rescue.Spec, partition.Spec, nixosconfig.Spec, command.Spec, command.ShellSpec),
		Options:  runner.Options{Check: check},
		Timeout:  5 * time.Minute,
	})
}

func waitMode(t *testing.T, f *sim.Fleet, h *sim.Host, mode sim.Mode) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for h.Mode() != mode {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %s: %s", h.Name(), mode, h.Mode())
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.WaitSSH(ctx, h.Name()); err != nil {
		t.Fatal(err)
	}
}

// installPlaybook is the kexec path after the kexec: a disk laid out with
// swap, the configuration, then install in one stage. The root is /target:
// a simulated host hides the machine's /mnt under a tmpfs, which the
// payload's nixos-generate-config would take for a file system of the
// installed system.
const installPlaybook = `
- hosts: all
  tasks:
    - name: partition
      partition:
        disks: "{{ disks }}"
        label: msdos
        root: /target
        partitions:
          - {name: nixos, size: rest, type: ext4, label: nixos, mount: /}
          - {name: swap, size: 512MiB, type: swap, label: swap}
    - name: configure
      nixos_config:
        root: /target
        ssh_keys: ["{{ rescue_ssh_key }}"]
        ipv6_gateway: "{{ ipv6_gateway }}"
    - name: install
      install:
        root: /target
        timeout: 2m
`

// TestInstallOnSimulatedServer installs NixOS from the installer onto a
// simulated server's disk and boots it: the netboot goes back to the disk,
// the disk's system answers SSH as NixOS with a new host key that nixbook
// records, and a second run changes nothing.
func TestInstallOnSimulatedServer(t *testing.T) {
	f := startFleet(t, 1)
	ks1, _ := f.Host("ks1")
	if err := f.Reboot(context.Background(), "ks1", sim.ModeInstaller); err != nil {
		t.Fatal(err)
	}
	waitMode(t, f, ks1, sim.ModeInstaller)
	disksBefore, err := f.DiskSHA256("ks1")
	if err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(t.TempDir(), "known_hosts")

	// A dry run on the fresh server writes nothing and shows every step.
	res := run(t, f, known, installPlaybook, true)
	if r := res.HostRecap("ks1"); r.Failed+r.Unreachable != 0 {
		t.Fatalf("dry run recap %+v", r)
	}
	if after, _ := f.DiskSHA256("ks1"); fmt.Sprint(after) != fmt.Sprint(disksBefore) {
		t.Errorf("the dry run changed the disk")
	}
	planned := res.Planned("ks1", "install")
	for _, want := range []string{"nixos-install --root /target --no-root-passwd", "PUT /dedicated/server/" + ks1.Service() + " {bootId: 1}", "reboot"} {
		if !strings.Contains(strings.Join(planned, "\n"), want) {
			t.Errorf("the dry run's install plan lacks %q:\n%s", want, strings.Join(planned, "\n"))
		}
	}

	bootBefore, keyBefore := ks1.BootID(), ks1.HostKey()
	res = run(t, f, known, installPlaybook, false)
	if r := res.HostRecap("ks1"); r.Failed+r.Unreachable != 0 {
		for _, e := range res.Events {
			if e.Status == runner.StatusFailed {
				t.Errorf("%s: %s", e.Task, e.Msg)
			}
		}
		t.Fatalf("recap %+v; host status %+v", r, ks1.Status(context.Background()))
	}
	if ks1.Mode() != sim.ModeDisk || ks1.BootID() == bootBefore {
		t.Fatalf("ks1 runs %s on boot %s (was %s)", ks1.Mode(), ks1.BootID(), bootBefore)
	}
	keyAfter := ks1.HostKey()
	if keyAfter == keyBefore {
		t.Error("the installed system kept the installer's host key")
	}
	fp, _ := sim.Fingerprint(keyAfter)
	if recorded := runnertest.KnownKeys(t, known, "ks1"); len(recorded) != 1 || recorded[0] != fp {
		t.Errorf("known_hosts has %q for ks1, want the installed system's %s", recorded, fp)
	}
	if st, _ := f.Emulator().Server(ks1.Service()); st.BootID != 1 {
		t.Errorf("netboot %d, want the disk", st.BootID)
	}

	// The installed system: install reports it and changes nothing.
	res = run(t, f, known, `
- hosts: all
  tasks:
    - name: install
      install: {}
`, false)
	if r := res.HostRecap("ks1"); r.Changed+r.Failed+r.Unreachable != 0 {
		t.Errorf("rerun recap %+v", r)
	}
	for _, e := range res.Events {
		if e.Task == "install" && e.Type == runner.EventResult && !strings.Contains(e.Msg, "already runs the installed NixOS") {
			t.Errorf("rerun message %q", e.Msg)
		}
	}
}

// TestFinishStageOnSimulatedServer runs the two stages as the ISO path's
// playbook does, on a server that never comes back from the reboot: the
// system is installed, the disk is handed over, and the failure says what
// to do, naming the root partition.
func TestFinishStageOnSimulatedServer(t *testing.T) {
	f := startFleet(t, 1)
	ks1, _ := f.Host("ks1")
	if err := f.Reboot(context.Background(), "ks1", sim.ModeInstaller); err != nil {
		t.Fatal(err)
	}
	waitMode(t, f, ks1, sim.ModeInstaller)
	ks1.InjectFault(sim.FaultNeverReturns, true)
	playbook := strings.Replace(installPlaybook, `
    - name: install
      install:
        root: /target
        timeout: 2m
`, `
    - name: install the system
      install:
        stage: system
        root: /target
    - name: boot it
      install:
        stage: finish
        root: /target
        timeout: 10s
`, 1)
	res := run(t, f, filepath.Join(t.TempDir(), "known_hosts"), playbook, false)
	if r := res.HostRecap("ks1"); r.Failed != 1 || r.Changed != 3 {
		t.Fatalf("recap %+v, want three changes and the wait failed", r)
	}
	msg := res.Message("ks1", "boot it")
	for _, want := range []string{
		"did not answer SSH within 10s after booting the installed system. Its configuration may not bring the network up (check the interface name, addresses and gateways in /target/etc/nixos).",
		"mount its root (`mount /dev/sda1 /mnt`) and read that boot's journal with `journalctl -D /mnt/var/log/journal -b -0`",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q\nlacks %q", msg, want)
		}
	}
	if st, _ := f.Emulator().Server(ks1.Service()); st.BootID != 1 {
		t.Errorf("netboot %d, want the disk", st.BootID)
	}
	if st := ks1.Status(context.Background()); st.SSH {
		t.Errorf("ks1 answers SSH despite the fault: %+v", st)
	}
}
