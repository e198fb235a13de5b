package zfs

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/modules/zfs/internal/zfsvm"
)

// contract holds zfs to the module contract on real ZFS, in the guest of
// TestOnRealZFS: each property gets a disk of its own from the first-th on,
// partitioned and blank, and the state Check must leave alone is what the
// guest's ZFS and disks say.
func contract(t *testing.T, vm *zfsvm.VM, h *moduletest.LocalHost, first int32) {
	sh := func(script string) string { return vm.Run(t, "sh", "-c", script) }
	var next atomic.Int32
	next.Store(first)
	moduletest.Contract(t, Spec, func(t *testing.T) moduletest.Subject {
		i := next.Add(1) - 1
		disk := fmt.Sprintf("/dev/vd%c", 'a'+i)
		sh(fmt.Sprintf("set -e; parted -s %s mklabel gpt mkpart zfs 1MiB 100%%; udevadm settle", disk))
		state := "zpool list -H -o name,health,size; zfs list -H -o name,mountpoint,compression; zpool import 2>&1 | grep -E 'pool:|state:' || true; blkid " + disk + "1 || true"
		return moduletest.Subject{
			Args: fmt.Sprintf(`pool: contract%d
devices: [/dev/disk/by-id/virtio-zfsvm-%d-part1]
datasets:
  - {name: data, mountpoint: none}
  - {name: data/kept, mountpoint: none, properties: {compression: zstd}}
`, i, i),
			Host:  h,
			State: func(t *testing.T) string { return sh(state) },
		}
	})
}
