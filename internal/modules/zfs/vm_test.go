package zfs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/modules/zfs/internal/zfsvm"
)

// TestOnRealZFS drives the module through nixbook's SSH transport against a
// guest with real ZFS (internal/modules/zfs/internal/zfsvm), on its virtual disks:
//
//	vda: boot + zfs partitions, the seed's layout (rpool), export, import
//	vdb, vdc: one partition each, a mirror (tank)
//	vdd: one partition holding ext4, refused, then wiped
//	vde, vdf, vdg: whole disks, raidz (wide), exported and imported
//	vdh: blank, only checked
//	vdi, vdj, vdk: the module contract, one disk for each property
func TestOnRealZFS(t *testing.T) {
	vm := zfsvm.StartWith(t, zfsvm.Options{Disks: 11})
	h := vm.Host(t)
	sh := func(script string) string { return vm.Run(t, "sh", "-c", script) }

	sh(`set -e
parted -s /dev/vda mklabel gpt mkpart boot ext4 1MiB 65MiB mkpart zfs 65MiB 100%
for d in vdb vdc vdd; do parted -s /dev/$d mklabel gpt mkpart zfs 1MiB 100%; done
udevadm settle
mkfs.ext4 -q -L old /dev/vdd1`)

	rpool := `pool: rpool
devices: [/dev/disk/by-id/virtio-zfsvm-0-part2]
datasets:
  - {name: root, mountpoint: none}
  - {name: root/nixos, mount: /}
  - {name: home, mount: /home}
  - {name: reserved, mountpoint: none, properties: {refreservation: 64M}}
`
	t.Run("create", func(t *testing.T) {
		p, out := apply(t, h, rpool)
		wantCommands(t, p, "zpool create -o ashift=12 -O acltype=posixacl -O atime=off -O compression=lz4 -O dnodesize=auto -O mountpoint=none -O normalization=formD -O xattr=sa -R /mnt rpool /dev/disk/by-id/virtio-zfsvm-0-part2")
		if got := sh("zpool list -H -o name,health rpool"); got != "rpool\tONLINE\n" {
			t.Errorf("zpool list: %q", got)
		}
		if got := sh("zpool status -P rpool"); !strings.Contains(got, "/dev/disk/by-id/virtio-zfsvm-0-part2") {
			t.Errorf("pool not on the by-id partition:\n%s", got)
		}
		wantLines(t, sh("zpool get -H -o value ashift rpool; zfs get -H -o value compression,acltype,xattr,normalization,mountpoint rpool; zfs get -H -o value mountpoint rpool/root/nixos; zfs get -H -o value mountpoint rpool/home; zfs get -H -o value mountpoint rpool/root; zfs get -H -p -o value refreservation rpool/reserved"),
			"12", "lz4", "posix", "sa", "formD", "none", "legacy", "legacy", "none", "67108864")
		wantLines(t, sh("findmnt -n -r -o SOURCE,FSTYPE -M /mnt; findmnt -n -r -o SOURCE,FSTYPE -M /mnt/home"),
			"rpool/root/nixos zfs", "rpool/home zfs")
		if out["root_on_zfs"] != true || out["hostid"] != "8425e349" {
			t.Errorf("output: root_on_zfs %v, hostid %v", out["root_on_zfs"], out["hostid"])
		}
		sh("echo kept > /mnt/home/marker")
	})
	t.Run("rerun changes nothing", func(t *testing.T) { noChange(t, h, rpool) })

	t.Run("property change", func(t *testing.T) {
		args := rpool + "root_properties: {compression: zstd}\n"
		p, _ := apply(t, h, args)
		wantCommands(t, p, "zfs set compression=zstd rpool")
		if got := sh("zfs get -H -o value compression rpool"); got != "zstd\n" {
			t.Errorf("compression %q", got)
		}
		noChange(t, h, args)
		rpool = args // the task from now on
	})

	t.Run("export", func(t *testing.T) {
		p, _ := apply(t, h, "pool: rpool\nstate: exported\n")
		wantCommands(t, p, "zpool export rpool")
		if got := sh("zpool list -H -o name; findmnt -n -M /mnt || true"); got != "" {
			t.Errorf("after export: %q", got)
		}
		noChange(t, h, "pool: rpool\nstate: exported\n")
	})

	t.Run("import on rerun", func(t *testing.T) {
		p, _ := apply(t, h, rpool)
		wantCommands(t, p, "zpool import -N -R /mnt -d /dev/disk/by-id rpool", "mount -t zfs rpool/root/nixos /mnt", "mount -t zfs rpool/home /mnt/home")
		for _, c := range p.Commands() {
			if strings.HasPrefix(c, "zpool create") {
				t.Errorf("rerun after export plans %q", c)
			}
		}
		if got := sh("cat /mnt/home/marker"); got != "kept\n" {
			t.Errorf("marker = %q: the pool was not kept", got)
		}
		noChange(t, h, rpool)
	})

	tank := `pool: tank
vdev: mirror
devices: [/dev/vdb1, /dev/vdc1]
datasets: [{name: srv, mountpoint: /srv}]
`
	t.Run("mirror", func(t *testing.T) {
		apply(t, h, tank)
		status := sh("zpool status -P tank")
		if !strings.Contains(status, "mirror-0") || !strings.Contains(status, "/dev/vdb1") || !strings.Contains(status, "/dev/vdc1") {
			t.Errorf("not a mirror of vdb1 and vdc1:\n%s", status)
		}
		wantLines(t, sh("findmnt -n -o SOURCE -M /mnt/srv"), "tank/srv")
		noChange(t, h, tank)
		_, err := moduletest.New(t, Spec, "pool: tank\ndevices: [/dev/vdb1]\n").Check(context.Background(), h.ReadOnly())
		if err == nil || !strings.Contains(err.Error(), "layout mirror /dev/vdb1 /dev/vdc1, the task asks /dev/vdb1") {
			t.Errorf("a different layout: err = %v", err)
		}
	})

	scratch := "pool: scratch\ndevices: [/dev/vdd1]\n"
	t.Run("refuses foreign data", func(t *testing.T) {
		_, err := moduletest.New(t, Spec, scratch).Check(context.Background(), h.ReadOnly())
		if err == nil || !strings.Contains(err.Error(), "/dev/vdd1 holds an ext4 filesystem labelled old") || !strings.Contains(err.Error(), "wipe: true") {
			t.Fatalf("err = %v", err)
		}
		if got := sh("zpool list -H -o name; blkid -p -s TYPE -o value /dev/vdd1"); got != "rpool\ntank\next4\n" {
			t.Errorf("after refusal: %q", got)
		}
	})
	t.Run("wipe", func(t *testing.T) {
		args := scratch + "wipe: true\n"
		p, _ := apply(t, h, args)
		wantCommands(t, p, "wipefs -a /dev/vdd1", "zpool create -f -o ashift=12")
		if got := sh("blkid -p -s TYPE -s LABEL -o value /dev/vdd1"); got != "scratch\nzfs_member\n" && got != "zfs_member\nscratch\n" {
			t.Errorf("blkid after wipe: %q", got)
		}
		noChange(t, h, args)
	})

	wide := `pool: wide
vdev: raidz
devices: [/dev/disk/by-id/virtio-zfsvm-4, /dev/disk/by-id/virtio-zfsvm-5, /dev/disk/by-id/virtio-zfsvm-6]
root: /mnt/wide
datasets: [{name: data, mount: /data}]
`
	t.Run("raidz over whole disks", func(t *testing.T) {
		apply(t, h, wide)
		status := sh("zpool status -P wide")
		for _, want := range []string{"raidz1-0", "/dev/disk/by-id/virtio-zfsvm-4-part1", "/dev/disk/by-id/virtio-zfsvm-6-part1"} {
			if !strings.Contains(status, want) {
				t.Errorf("status lacks %s:\n%s", want, status)
			}
		}
		wantLines(t, sh("findmnt -n -o SOURCE -M /mnt/wide/data"), "wide/data")
		noChange(t, h, wide)
		apply(t, h, "pool: wide\nstate: exported\n")
		p, _ := apply(t, h, wide)
		wantCommands(t, p, "zpool import -N -R /mnt/wide -d /dev/disk/by-id wide")
		noChange(t, h, wide)
	})

	t.Run("missing device", func(t *testing.T) {
		_, err := moduletest.New(t, Spec, "pool: gone\ndevices: [/dev/vdz1]\n").Check(context.Background(), h.ReadOnly())
		if err == nil || !strings.Contains(err.Error(), "device /dev/vdz1 not found (its disks: /dev/vda") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("check changes nothing", func(t *testing.T) {
		before := sh("zpool list -H -o name; blkid -p /dev/vdh || true; findmnt -r -n -o TARGET | sort")
		p, err := moduletest.New(t, Spec, "pool: dry\ndevices: [/dev/vdh]\ndatasets: [{name: a, mount: /dry}]\nroot: /mnt/dry\n").Check(context.Background(), h.ReadOnly())
		if err != nil {
			t.Fatal(err)
		}
		wantCommands(t, p, "zpool create -o ashift=12", "mount -t zfs dry/a /mnt/dry/dry")
		if after := sh("zpool list -H -o name; blkid -p /dev/vdh || true; findmnt -r -n -o TARGET | sort"); after != before {
			t.Errorf("check changed the guest:\nbefore %q\nafter  %q", before, after)
		}
	})
	t.Run("contract", func(t *testing.T) { contract(t, vm, h, 8) })
}

// apply runs a task as the runner does: Check through the read-only view,
// then Apply when something changes.
func apply(t *testing.T, h *moduletest.LocalHost, args string) (*modules.Plan, modules.Output) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m := moduletest.New(t, Spec, args)
	p, err := m.Check(ctx, h.ReadOnly())
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if !p.Changed() {
		t.Fatalf("check plans no change:\n%s", moduletest.FormatPlan(p))
	}
	t.Logf("plan:\n%s", moduletest.FormatPlan(p))
	out, err := m.Apply(ctx, h, p)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return p, out
}

func noChange(t *testing.T, h *moduletest.LocalHost, args string) {
	t.Helper()
	p, err := moduletest.New(t, Spec, args).Check(context.Background(), h.ReadOnly())
	if err != nil {
		t.Fatalf("rerun check: %v", err)
	}
	if p.Changed() {
		t.Errorf("rerun plans changes:\n%s", moduletest.FormatPlan(p))
	}
}

// wantCommands checks that each want is the start of one of the plan's
// commands, in order.
func wantCommands(t *testing.T, p *modules.Plan, want ...string) {
	t.Helper()
	cmds := p.Commands()
	i := 0
	for _, c := range cmds {
		if i < len(want) && strings.HasPrefix(c, want[i]) {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("plan lacks %q (in this order); it runs:\n  %s", want[i], strings.Join(cmds, "\n  "))
	}
}

func wantLines(t *testing.T, got string, want ...string) {
	t.Helper()
	if strings.TrimRight(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}
