package kexec

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

const kexecPlaybook = `
- hosts: all
  tasks:
    - name: kexec
      kexec:
        url: "{{ kexec_url }}"
        sha256: "{{ kexec_sha256 }}"
        timeout: 15s
`

// runPlaybook runs a playbook on the fleet as `nixbook run` does, with
// the runner's SSH transport and a known_hosts file of the test's.
func runPlaybook(t *testing.T, f *simtest.Fleet, knownHosts, playbook string, check bool) *runnertest.Result {
	t.Helper()
	return runnertest.Run(context.Background(), t, runnertest.Config{
		Inventory: f.FleetYAML, Playbook: playbook, KnownHosts: knownHosts, ConnectTimeout: 5 * time.Second,
		Registry: modules.NewRegistry(Spec, command.Spec),
		Options:  runner.Options{Check: check},
	})
}

// TestKexecOnSimulatedFleet takes two rescue servers into the NixOS
// installer with the payload's kexec tarball: the dry run shows the steps
// and changes nothing; ks1 comes back on a new boot as the installer with
// the rescue's host key, recorded once; ks2, whose kexec hangs, fails
// after the timeout with the advice, while ks1 finishes; a second run
// leaves ks1 alone.
func TestKexecOnSimulatedFleet(t *testing.T) {
	f := simtest.Start(t, 2)
	f.InjectFault("ks2", sim.FaultKexecHangs)
	known := filepath.Join(t.TempDir(), "known_hosts")

	boot1, key1 := f.BootID("ks1"), f.HostKey("ks1")
	disks := f.DiskSHA256("ks1")
	res := runPlaybook(t, f, known, kexecPlaybook, true)
	if r := res.HostRecap("ks1"); r.Failed+r.Unreachable != 0 || r.Changed != 1 {
		t.Fatalf("dry run recap %+v", r)
	}
	planned := res.Planned("ks1", "kexec")
	for _, want := range []string{"curl -fL --retry 5 -C - -o /root/kexec/kexec.tar.gz.part", "sha256sum -- /root/kexec/kexec.tar.gz.part", "tar -xzf /root/kexec/kexec.tar.gz -C /root/kexec", "setsid --wait /root/kexec/kexec/run"} {
		if !strings.Contains(strings.Join(planned, "\n"), want) {
			t.Errorf("the dry run's plan lacks %q:\n%s", want, strings.Join(planned, "\n"))
		}
	}
	if f.Mode("ks1") != sim.ModeRescue || f.BootID("ks1") != boot1 {
		t.Fatalf("the dry run left ks1 in %s on boot %s", f.Mode("ks1"), f.BootID("ks1"))
	}
	if got := f.DiskSHA256("ks1"); len(got) == 0 || !equalMaps(got, disks) {
		t.Errorf("the dry run changed ks1's disk")
	}

	start := time.Now()
	res = runPlaybook(t, f, known, kexecPlaybook, false)
	t.Logf("kexec run took %s", time.Since(start).Round(time.Millisecond))
	if r := res.HostRecap("ks1"); r.Failed+r.Unreachable != 0 || r.Changed != 1 {
		t.Fatalf("ks1 recap %+v: %s", r, res.Message("ks1", "kexec"))
	}
	if f.Mode("ks1") != sim.ModeInstaller || f.BootID("ks1") == boot1 {
		t.Fatalf("ks1 runs %s on boot %s (was %s)", f.Mode("ks1"), f.BootID("ks1"), boot1)
	}
	if f.HostKey("ks1") != key1 {
		t.Error("the installer serves another host key than the rescue's")
	}
	fp, err := sim.Fingerprint(key1)
	if err != nil {
		t.Fatal(err)
	}
	if got := runnertest.KnownKeys(t, known, "ks1"); len(got) != 1 || got[0] != fp {
		t.Errorf("known_hosts has %q for ks1, want the rescue's key %s only", got, fp)
	}

	r2 := res.HostRecap("ks2")
	msg := res.Message("ks2", "kexec")
	if r2.Failed != 1 {
		t.Fatalf("ks2, whose kexec hangs, did not fail: %+v %s", r2, msg)
	}
	for _, want := range []string{"did not come back as the NixOS installer within 15s", "try another image", "install-iso.yml"} {
		if !strings.Contains(msg, want) {
			t.Errorf("ks2's failure %q lacks %q", msg, want)
		}
	}

	res = runPlaybook(t, f, known, kexecPlaybook, false)
	if r := res.HostRecap("ks1"); r.Changed+r.Failed+r.Unreachable != 0 {
		t.Errorf("rerun on the installer: %+v", r)
	}
	if msg := res.Message("ks1", "kexec"); !strings.Contains(msg, "already in the NixOS installer") {
		t.Errorf("rerun message %q", msg)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
