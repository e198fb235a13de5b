package partition

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/sim"
)

// TestContract holds partition to the module contract on simulated servers,
// real parted and mkfs on their loop disks: Check reads only (the disks'
// checksums do not move), two Checks agree, and Apply runs what the plan
// lists and converges.
func TestContract(t *testing.T) {
	f := startFleet(t, 3, &sim.Overrides{All: sim.HostOverride{DiskSize: "1GiB"}})
	var next atomic.Int32
	moduletest.Contract(t, Spec, func(t *testing.T) moduletest.Subject {
		h := dialSim(t, f, fmt.Sprintf("ks%d", next.Add(1)))
		return moduletest.Subject{
			Args: `disks: [/dev/sda]
partitions:
  - {name: bios_grub, size: 1MiB, type: bios_grub}
  - {name: boot, size: 128MiB, type: ext4, label: boot, mount: /boot}
  - {name: nixos, size: rest, type: ext4, label: nixos, mount: /}
`,
			Host:  h.LocalHost,
			State: func(t *testing.T) string { return fmt.Sprint(h.diskSums(t)) },
		}
	})
}
