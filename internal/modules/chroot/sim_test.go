package chroot

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/command"
	"github.com/nixbook/nixbook/internal/modules/fetchiso"
	"github.com/nixbook/nixbook/internal/modules/unsquash"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/runner/runnertest"
	"github.com/nixbook/nixbook/sim/simtest"
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

func runPlaybook(t *testing.T, f *simtest.Fleet, knownHosts, playbook string, check bool) *runnertest.Result {
	t.Helper()
	return runnertest.Run(context.Background(), t, runnertest.Config{
		Inventory: f.FleetYAML, Playbook: playbook, KnownHosts: knownHosts, ConnectTimeout: 5 * time.Second,
		Registry: modules.NewRegistry(fetchiso.Spec, unsquash.Spec, Spec, command.Spec, command.ShellSpec),
		Options:  runner.Options{Check: check},
	})
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

	res := runPlaybook(t, f, known, isoPath, true)
	for _, task := range []string{"fetch_iso", "unsquash", "chroot"} {
		if r := res.TaskResult("ks1", task); r.Status != runner.StatusWouldChange {
			t.Errorf("dry run: %s is %s (%s), want a planned change", task, r.Status, r.Msg)
		}
	}
	if h := res.Recap.Hosts[0]; h.Failed+h.Unreachable != 0 {
		t.Fatalf("dry run recap %+v", h)
	}
	if got := f.DiskSHA256("ks1"); strings.Join(mapValues(got), ",") != strings.Join(mapValues(disks), ",") {
		t.Error("the dry run wrote to the disk")
	}

	res = runPlaybook(t, f, known, isoPath, false)
	if h := res.Recap.Hosts[0]; h.Failed+h.Unreachable != 0 {
		t.Fatalf("recap %+v", h)
	}
	for _, task := range []string{"fetch_iso", "unsquash", "chroot", "generate"} {
		if st := res.TaskResult("ks1", task).Status; st != runner.StatusChanged {
			t.Errorf("%s is %s, want changed", task, st)
		}
	}

	res = runPlaybook(t, f, known, isoPath, false)
	for _, task := range []string{"fetch_iso", "unsquash", "chroot"} {
		if r := res.TaskResult("ks1", task); r.Status != runner.StatusOK {
			t.Errorf("second run: %s is %s (%s), want no change", task, r.Status, r.Msg)
		}
	}

	res = runPlaybook(t, f, known, leave, false)
	if st := res.TaskResult("ks1", "leave").Status; st != runner.StatusChanged {
		t.Errorf("state: absent is %s, want changed", st)
	}
	if out := res.Output("ks1", "mounts under the root"); strings.TrimSpace(out) != "/root/rescue" {
		t.Errorf("mounts under the root after state: absent: %q, want the rescue partition only", out)
	}
	if out := res.Output("ks1", "what the chroot wrote to the target"); !strings.Contains(out, "fileSystems") {
		t.Errorf("the target's hardware configuration: %q", out)
	}
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
