package rescue

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nixbook/nixbook/hostkeys"
	"github.com/nixbook/nixbook/inventory"
	"github.com/nixbook/nixbook/modules"
	"github.com/nixbook/nixbook/modules/command"
	"github.com/nixbook/nixbook/playbooks"
	"github.com/nixbook/nixbook/runner"
	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/hostinit"
	"github.com/nixbook/nixbook/sim/ovhapi"
	"github.com/nixbook/nixbook/tmpl"
	sshtransport "github.com/nixbook/nixbook/transport/ssh"
)

// TestMain lets the test binary serve as the simulated hosts' helper (their
// init, reboot, kexec and udevadm).
func TestMain(m *testing.M) {
	if code, ok := hostinit.Dispatch(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func startFleet(t *testing.T, hosts int) *sim.Fleet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the simulated fleet needs root (namespaces, loop devices, a bridge)")
	}
	for _, tool := range []string{"ip", "nsenter", "losetup", "/usr/sbin/sshd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the simulated fleet needs %s: %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := sim.Up(ctx, sim.Config{
		Dir: t.TempDir(), Hosts: hosts, BootDelay: 300 * time.Millisecond, Logf: t.Logf,
		Timings: ovhapi.Timings{Init: 100 * time.Millisecond, Todo: 100 * time.Millisecond, Doing: 300 * time.Millisecond},
	})
	if err != nil {
		t.Fatalf("fleet up: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Down(context.Background()); err != nil {
			t.Errorf("fleet down: %v", err)
		}
	})
	if err := f.WaitSSH(ctx); err != nil {
		t.Fatalf("wait for SSH: %v", err)
	}
	return f
}

// run runs a playbook on the fleet the way `nixbook run` does, with its own
// known_hosts file.
func run(t *testing.T, f *sim.Fleet, knownHosts, playbook string, check bool) (*runner.Recap, []runner.Event) {
	t.Helper()
	inv, err := inventory.Load(f.InventoryPath())
	if err != nil {
		t.Fatal(err)
	}
	eng := tmpl.New()
	reg := modules.NewRegistry(Spec, command.Spec, command.ShellSpec)
	pb, err := playbooks.LoadBytes("test.yml", []byte(playbook), t.TempDir(), reg)
	if err != nil {
		t.Fatal(err)
	}
	d := sshtransport.NewDialer(sshtransport.DialerOptions{Store: hostkeys.New(knownHosts), SSHConfigPath: "none"})
	defer d.Close()
	var mu sync.Mutex
	var events []runner.Event
	r := &runner.Runner{Dialer: d, Templates: eng, Options: runner.Options{Check: check, LogDir: t.TempDir()},
		Events: func(e runner.Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
			if e.Type == runner.EventResult {
				t.Logf("%s %s: %s %s", e.Host, e.Task, e.Status, e.Msg)
			}
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	recap, err := r.Run(ctx, pb, inv, "")
	if err != nil {
		t.Fatal(err)
	}
	return recap, events
}

func recapOf(r *runner.Recap, host string) runner.HostRecap {
	for _, h := range r.Hosts {
		if h.Host == host {
			return h
		}
	}
	return runner.HostRecap{}
}

// TestRescueOnSimulatedServers boots a server that runs the NixOS installer
// into the rescue through the emulated API, and checks that the reboot
// happened (new boot id), that the rescue's new host key was recorded, and
// that a second run changes nothing. A server already in the rescue is left
// alone.
func TestRescueOnSimulatedServers(t *testing.T) {
	f := startFleet(t, 2)
	ctx := context.Background()
	ks1, _ := f.Host("ks1")
	if err := f.Reboot(ctx, "ks1", sim.ModeInstaller); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for ks1.Mode() != sim.ModeInstaller {
		if time.Now().After(deadline) {
			t.Fatalf("ks1 never reached the installer: %s", ks1.Mode())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := f.WaitSSH(ctx, "ks1"); err != nil {
		t.Fatal(err)
	}
	bootBefore, keyBefore := ks1.BootID(), ks1.HostKey()
	ks2, _ := f.Host("ks2")
	ks2Boot := ks2.BootID()
	known := filepath.Join(t.TempDir(), "known_hosts")
	const playbook = `
- hosts: all
  tasks:
    - name: rescue
      rescue:
        service: "{{ ovh_service }}"
        timeout: 2m
        task_timeout: 1m
`
	// A dry run checks the credentials and the server, and plans the reboot.
	recap, events := run(t, f, known, playbook, true)
	if r := recapOf(recap, "ks1"); r.Failed+r.Unreachable != 0 || r.Changed != 1 {
		t.Fatalf("dry run recap %+v", r)
	}
	var planned []string
	for _, e := range events {
		if e.Host == "ks1" && e.Task == "rescue" {
			for _, c := range e.Changes {
				planned = append(planned, c.Commands...)
			}
		}
	}
	if !strings.Contains(strings.Join(planned, "\n"), "PUT /dedicated/server/"+ks1.Service()+" {bootId: 230242, rescueSshKey: ssh-ed25519") {
		t.Errorf("dry run plan lacks the netboot call:\n%s", strings.Join(planned, "\n"))
	}
	if ks1.BootID() != bootBefore || ks1.Mode() != sim.ModeInstaller {
		t.Fatalf("the dry run rebooted ks1")
	}

	recap, _ = run(t, f, known, playbook, false)
	if r := recapOf(recap, "ks1"); r.Failed+r.Unreachable != 0 || r.Changed != 1 {
		t.Fatalf("ks1 recap %+v", r)
	}
	if r := recapOf(recap, "ks2"); r.Failed+r.Unreachable+r.Changed != 0 {
		t.Errorf("ks2, already in the rescue, recap %+v", r)
	}
	if ks1.Mode() != sim.ModeRescue || ks1.BootID() == bootBefore {
		t.Errorf("ks1 is in %s on boot %s (was %s)", ks1.Mode(), ks1.BootID(), bootBefore)
	}
	if ks2.BootID() != ks2Boot {
		t.Errorf("ks2 was rebooted")
	}
	keyAfter := ks1.HostKey()
	if keyAfter == keyBefore {
		t.Fatal("the rescue kept the installer's host key")
	}
	fp, err := sim.Fingerprint(keyAfter)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := hostkeys.New(known).List()
	if err != nil {
		t.Fatal(err)
	}
	var recorded []string
	for _, e := range entries {
		if strings.Contains(e.Host, "ks1") {
			recorded = append(recorded, e.Fingerprint)
		}
	}
	if len(recorded) != 1 || recorded[0] != fp {
		t.Errorf("known_hosts has %q for ks1, want only the rescue's %s", recorded, fp)
	}
	st, _ := f.Emulator().Server(ks1.Service())
	if st.RescueSSHKey != f.ClientPublicKey() || st.Tasks[len(st.Tasks)-1].Boot.Kernel != "rescue12-customer" {
		t.Errorf("API state %+v", st)
	}

	recap, _ = run(t, f, known, playbook, false)
	for _, h := range []string{"ks1", "ks2"} {
		if r := recapOf(recap, h); r.Changed+r.Failed+r.Unreachable != 0 {
			t.Errorf("second run on %s: %+v", h, r)
		}
	}
}
