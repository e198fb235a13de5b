package install

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/simtest"
)

// TestContract holds install to the module contract on simulated servers
// in the installer, their disk laid out and configured as installPlaybook
// does: Check changes no disk byte and no boot, two Checks agree, and Apply
// runs what the plan lists, installs, boots the disk and comes back there,
// where a Check plans nothing more.
func TestContract(t *testing.T) {
	fleet := simtest.Start(t, 3)
	f := fleet.Sim()
	var next atomic.Int32
	moduletest.Contract(t, Spec, func(t *testing.T) moduletest.Subject {
		name := fmt.Sprintf("ks%d", next.Add(1))
		h, _ := f.Host(name)
		if err := f.Reboot(context.Background(), name, sim.ModeInstaller); err != nil {
			t.Fatal(err)
		}
		waitMode(t, f, h, sim.ModeInstaller)
		prepare := strings.Replace(installPlaybook, "hosts: all", "hosts: "+name, 1)
		prepare = prepare[:strings.Index(prepare, "    - name: install")]
		res := run(t, f, filepath.Join(t.TempDir(), "known_hosts"), prepare, false)
		if r := res.HostRecap(name); r.Failed+r.Unreachable != 0 {
			t.Fatalf("preparing %s: %+v", name, r)
		}
		return moduletest.Subject{
			Args: "root: /target\ntimeout: 2m\n",
			Host: fleet.ModuleHost(t, name),
			State: func(t *testing.T) string {
				sums, err := f.DiskSHA256(name)
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprintf("mode %s, boot %s, disks %v", h.Mode(), h.BootID(), sums)
			},
		}
	})
}
