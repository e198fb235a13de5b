package rescue

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/command"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/runner/runnertest"
	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/simtest"
)

// TestMain lets the test binary serve as the simulated hosts' helper.
func TestMain(m *testing.M) { simtest.Main(m) }

// run runs a playbook on the fleet the way `nixbook run` does, with its own
// known_hosts file.
func run(t *testing.T, f *sim.Fleet, knownHosts, playbook string, check bool) *runnertest.Result {
	t.Helper()
	return runnertest.Run(context.Background(), t, runnertest.Config{
		Inventory: f.InventoryPath(), Playbook: playbook, KnownHosts: knownHosts,
		Registry: modules.NewRegistry(Spec, command.Spec, command.ShellSpec),
		Options:  runner.Options{Check: check},
	})
}

// TestRescueOnSimulatedServers boots a server that runs the NixOS installer
// into the rescue through the emulated API, and checks that the reboot
// happened (new boot id), that the rescue's new host key was recorded, and
// that a second run changes nothing. A server already in the rescue is left
// alone.
func TestRescueOnSimulatedServers(t *testing.T) {
	f := simtest.Start(t, 2, simtest.WithoutPayload()).Sim()
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
	res := run(t, f, known, playbook, true)
	if r := res.HostRecap("ks1"); r.Failed+r.Unreachable != 0 || r.Changed != 1 {
		t.Fatalf("dry run recap %+v", r)
	}
	planned := res.Planned("ks1", "rescue")
	// The fleet booted ks1's rescue through the API with the inventory's
	// key, so the netboot is already right: only the reboot is planned.
	if p := strings.Join(planned, "\n"); !strings.Contains(p, "POST /dedicated/server/"+ks1.Service()+"/reboot") || strings.Contains(p, "PUT ") {
		t.Errorf("dry run plan: want the reboot alone:\n%s", p)
	}
	if ks1.BootID() != bootBefore || ks1.Mode() != sim.ModeInstaller {
		t.Fatalf("the dry run rebooted ks1")
	}

	res = run(t, f, known, playbook, false)
	if r := res.HostRecap("ks1"); r.Failed+r.Unreachable != 0 || r.Changed != 1 {
		t.Fatalf("ks1 recap %+v", r)
	}
	if r := res.HostRecap("ks2"); r.Failed+r.Unreachable+r.Changed != 0 {
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
	if recorded := runnertest.KnownKeys(t, known, "ks1"); len(recorded) != 1 || recorded[0] != fp {
		t.Errorf("known_hosts has %q for ks1, want only the rescue's %s", recorded, fp)
	}
	st, _ := f.Emulator().Server(ks1.Service())
	if st.RescueSSHKey != f.ClientPublicKey() || st.Tasks[len(st.Tasks)-1].Boot.Kernel != "rescue12-customer" {
		t.Errorf("API state %+v", st)
	}

	res = run(t, f, known, playbook, false)
	for _, h := range []string{"ks1", "ks2"} {
		if r := res.HostRecap(h); r.Changed+r.Failed+r.Unreachable != 0 {
			t.Errorf("second run on %s: %+v", h, r)
		}
	}
}

// TestRescueWithOAuth2OnSimulatedServers boots a server into the rescue
// through the fleet's emulated API with the account's OAuth2 service
// account instead of its consumer key: tokens from the emulator's token
// endpoint, every call a bearer call, on the bad day by default.
func TestRescueWithOAuth2OnSimulatedServers(t *testing.T) {
	f := simtest.Start(t, 1, simtest.WithoutPayload()).Sim()
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
	bootBefore := ks1.BootID()
	creds := f.Credentials()
	oauth2 := func(secret string) map[string]any {
		return map[string]any{
			"ovh_application_key": "", "ovh_application_secret": "", "ovh_consumer_key": "",
			"ovh_client_id": creds.ClientID, "ovh_client_secret": secret,
		}
	}
	const playbook = `
- hosts: all
  tasks:
    - name: rescue
      rescue:
        service: "{{ ovh_service }}"
        timeout: 2m
        task_timeout: 1m
`
	known := filepath.Join(t.TempDir(), "known_hosts")
	runWith := func(check bool, vars map[string]any) *runnertest.Result {
		return runnertest.Run(ctx, t, runnertest.Config{
			Inventory: f.InventoryPath(), Playbook: playbook, KnownHosts: known,
			Registry: modules.NewRegistry(Spec, command.Spec, command.ShellSpec),
			Options:  runner.Options{Check: check, ExtraVars: vars},
		})
	}
	if r := runWith(true, oauth2("wrong")).HostRecap("ks1"); r.Failed != 1 {
		t.Errorf("a wrong client secret: recap %+v, want ks1 failed", r)
	}
	if r := runWith(false, oauth2(creds.ClientSecret)).HostRecap("ks1"); r.Failed+r.Unreachable != 0 || r.Changed != 1 {
		t.Fatalf("ks1 recap %+v", r)
	}
	if ks1.Mode() != sim.ModeRescue || ks1.BootID() == bootBefore {
		t.Errorf("ks1 is in %s on boot %s (was %s)", ks1.Mode(), ks1.BootID(), bootBefore)
	}
}
