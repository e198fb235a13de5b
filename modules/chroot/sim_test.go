package chroot

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nixbook/nixbook/hostkeys"
	"github.com/nixbook/nixbook/inventory"
	"github.com/nixbook/nixbook/modules"
	"github.com/nixbook/nixbook/modules/command"
	"github.com/nixbook/nixbook/modules/fetchiso"
	"github.com/nixbook/nixbook/modules/unsquash"
	"github.com/nixbook/nixbook/playbooks"
	"github.com/nixbook/nixbook/runner"
	"github.com/nixbook/nixbook/sim/simtest"
	"github.com/nixbook/nixbook/tmpl"
	sshtransport "github.com/nixbook/nixbook/transport/ssh"
)

// TestMain lets the test binary serve as the simulated hosts' helper.
func TestMain(m *testing.M) { simtest.Main(m) }

// isoPath is the 2015 procedure on a rescue server up to a shell in the
// ISO's system: a target partition and the rescue partition, the ISO,
// its store on the rescue partition, the chroot, and a command inside it
// that writes to the target. The target root is /target: a simulated host
// hides the machine's /mnt under a tmpfs.
const isoPath = `
- hosts: all
  tasks:
    - name: partition
      shell:
        cmd: >-
          parted -s /dev/sda mklabel msdos mkpart primary ext4 1MiB 4GiB mkpart primary ext4 4GiB 100% &&
          udevadm settle && mkfs.ext4 -q -L nixos /dev/sda1 && mkfs.ext4 -q -L nixos-rescue /dev/sda2 && udevadm settle
        creates: /dev/disk/by-label/nixos-rescue
    - name: mount the target
      shell:
        cmd: mkdir -p /target && mount /dev/disk/by-label/nixos /target
        creates: /target/lost+found
    - name: fetch_iso
      fetch_iso:
        url: "{{ nixos_iso_url }}"
        sha256: "{{ nixos_iso_sha256 }}"
    - name: unsquash
      unsquash:
        device: /dev/disk/by-label/nixos-rescue
    - name: chroot
      chroot:
        root: /root/rescue
        bind: [/target]
    - name: generate
      command: nixos-generate-config --root /target
      chroot: /root/rescue
`

const leave = `
- hosts: all
  tasks:
    - name: leave
      chroot:
        root: /root/rescue
        state: absent
    - name: mounts under the root
      command: findmnt -n -R -o TARGET /root/rescue
      register: left
    - name: what the chroot wrote to the target
      command: cat /target/etc/nixos/hardware-configuration.nix
`

func runPlaybook(t *testing.T, f *simtest.Fleet, knownHosts, playbook string, check bool) (*runner.Recap, []runner.Event) {
	t.Helper()
	inv, err := inventory.Load(f.FleetYAML)
	if err != nil {
		t.Fatal(err)
	}
	eng := tmpl.New()
	reg := modules.NewRegistry(fetchiso.Spec, unsquash.Spec, Spec, command.Spec, command.ShellSpec)
	pb, err := playbooks.LoadBytes("test.yml", []byte(playbook), t.TempDir(), reg)
	if err != nil {
		t.Fatal(err)
	}
	d := sshtransport.NewDialer(sshtransport.DialerOptions{Store: hostkeys.New(knownHosts), SSHConfigPath: "none", ConnectTimeout: 5 * time.Second})
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

// results maps each task of a host to its last result.
func results(events []runner.Event, host string) map[string]runner.Event {
	out := map[string]runner.Event{}
	for _, e := range events {
		if e.Host == host && e.Type == runner.EventResult {
			out[e.Task] = e
		}
	}
	return out
}

// TestISOPathOnSimulatedServer runs fetch_iso, unsquash and chroot on a
// simulated rescue server through the runner: the dry run on the fresh
// server plans every step and writes nothing; the run gets a shell in the
// ISO's system whose commands write to the target; a second run changes
// nothing of the three; state: absent unmounts the root and only it.
func TestISOPathOnSimulatedServer(t *testing.T) {
	f := simtest.Start(t, 1)
	known := filepath.Join(t.TempDir(), "known_hosts")
	disks := f.DiskSHA256("ks1")

	recap, events := runPlaybook(t, f, known, isoPath, true)
	r := results(events, "ks1")
	for _, task := range []string{"fetch_iso", "unsquash", "chroot"} {
		if r[task].Status != runner.StatusWouldChange {
			t.Errorf("dry run: %s is %s (%s), want a planned change", task, r[task].Status, r[task].Msg)
		}
	}
	if h := recap.Hosts[0]; h.Failed+h.Unreachable != 0 {
		t.Fatalf("dry run recap %+v", h)
	}
	if got := f.DiskSHA256("ks1"); strings.Join(mapValues(got), ",") != strings.Join(mapValues(disks), ",") {
		t.Error("the dry run wrote to the disk")
	}

	recap, events = runPlaybook(t, f, known, isoPath, false)
	r = results(events, "ks1")
	if h := recap.Hosts[0]; h.Failed+h.Unreachable != 0 {
		for task, e := range r {
			t.Logf("%s: %s %s", task, e.Status, e.Msg)
		}
		t.Fatalf("recap %+v", h)
	}
	for _, task := range []string{"fetch_iso", "unsquash", "chroot", "generate"} {
		if r[task].Status != runner.StatusChanged {
			t.Errorf("%s is %s, want changed", task, r[task].Status)
		}
	}

	_, events = runPlaybook(t, f, known, isoPath, false)
	r = results(events, "ks1")
	for _, task := range []string{"fetch_iso", "unsquash", "chroot"} {
		if r[task].Status != runner.StatusOK {
			t.Errorf("second run: %s is %s (%s), want no change", task, r[task].Status, r[task].Msg)
		}
	}

	_, events = runPlaybook(t, f, known, leave, false)
	r = results(events, "ks1")
	if r["leave"].Status != runner.StatusChanged {
		t.Errorf("state: absent is %s, want changed", r["leave"].Status)
	}
	if out := outputOf(t, events, "ks1", "mounts under the root"); strings.TrimSpace(out) != "/root/rescue" {
		t.Errorf("mounts under the root after state: absent: %q, want the rescue partition only", out)
	}
	if out := outputOf(t, events, "ks1", "what the chroot wrote to the target"); !strings.Contains(out, "fileSystems") {
		t.Errorf("the target's hardware configuration: %q", out)
	}
}

// outputOf is what a command task printed.
func outputOf(t *testing.T, events []runner.Event, host, task string) string {
	t.Helper()
	var lines []string
	for _, e := range events {
		if e.Host == host && e.Task == task && e.Type == runner.EventOutput {
			lines = append(lines, e.Line)
		}
	}
	return strings.Join(lines, "\n")
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, k := range []string{"sda", "sdb", "nvme0n1"} {
		if v, ok := m[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}
