package zfs

import (
	"context"
	"errors"
	"flag"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/transport"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const seedDatasets = `
datasets:
  - {name: root, mountpoint: none}
  - {name: root/nixos, mount: /}
  - {name: home, mount: /home}
`

func TestPlans(t *testing.T) {
	tests := []struct {
		name string
		args string
		host func() *fakeHost
	}{
		{
			name: "single_disk",
			args: "pool: rpool\ndevices: [/dev/sda2]\n" + seedDatasets,
			host: func() *fakeHost { return newFakeHost().disk("/dev/sda", "", 2) },
		},
		{
			name: "mirror_partitions",
			args: "pool: rpool\nvdev: mirror\ndevices: [/dev/sda3, /dev/sdb3]\nproperties: {autotrim: on}\nroot_properties: {compression: zstd}\n" + seedDatasets +
				"  - {name: reserved, mountpoint: none, properties: {refreservation: 1G}}\n",
			host: func() *fakeHost { return newFakeHost().disk("/dev/sda", "", 3).disk("/dev/sdb", "", 3) },
		},
		{
			name: "raidz_whole_disks",
			args: "pool: tank\nvdev: raidz\ndevices: [/dev/sdb, /dev/sdc, /dev/sdd]\nroot: /mnt\ndatasets:\n  - {name: data, mountpoint: /srv/data}\n  - {name: data/www, mountpoint: /srv/data/www, properties: {recordsize: 1M}}\n",
			host: func() *fakeHost {
				return newFakeHost().disk("/dev/sda", "", 2).disk("/dev/sdb", "", 0).disk("/dev/sdc", "", 0).disk("/dev/sdd", "", 0)
			},
		},
		{
			name: "nvme_by_id",
			args: "pool: rpool\nvdev: mirror\ndevices: [/dev/disk/by-id/nvme-SAMSUNG_A-part3, /dev/disk/by-id/nvme-SAMSUNG_B-part3]\nashift: 13\n" + seedDatasets,
			host: func() *fakeHost {
				return newFakeHost().disk("/dev/nvme0n1", "nvme-SAMSUNG_A", 3).disk("/dev/nvme1n1", "nvme-SAMSUNG_B", 3)
			},
		},
		{
			name: "striped_mirrors",
			args: "pool: rpool\nvdevs:\n  - {vdev: mirror, devices: [/dev/sda2, /dev/sdb2]}\n  - {vdev: mirror, devices: [/dev/sdc2, /dev/sdd2]}\nroot: ''\n",
			host: func() *fakeHost {
				return newFakeHost().disk("/dev/sda", "", 2).disk("/dev/sdb", "", 2).disk("/dev/sdc", "", 2).disk("/dev/sdd", "", 2)
			},
		},
		{
			name: "existing_pool_import",
			args: "pool: rpool\nvdev: mirror\ndevices: [/dev/disk/by-id/ata-A-part2, /dev/disk/by-id/ata-B-part2]\n" + seedDatasets,
			host: func() *fakeHost {
				return newFakeHost().disk("/dev/sda", "ata-A", 2).disk("/dev/sdb", "ata-B", 2).
					offer(&fakePool{name: "rpool", id: "15713406366541393254",
						vdevs: []topVdev{{kind: "mirror", devices: []string{"/dev/disk/by-id/ata-A-part2", "/dev/disk/by-id/ata-B-part2"}}}})
			},
		},
		{
			name: "existing_pool_other_system",
			args: "pool: rpool\ndevices: [/dev/sda2]\n" + seedDatasets,
			host: func() *fakeHost {
				return newFakeHost().disk("/dev/sda", "", 2).disk("/dev/sdb", "", 0).
					offer(&fakePool{name: "backup", id: "1", vdevs: []topVdev{{devices: []string{"/dev/sdb"}}}}).
					offer(&fakePool{name: "rpool", id: "42", status: "The pool was last accessed by another system.",
						vdevs: []topVdev{{devices: []string{"/dev/sda2"}}}})
			},
		},
		{
			name: "existing_whole_disk_pool",
			args: "pool: tank\nvdev: mirror\ndevices: [/dev/sdb, /dev/sdc]\n",
			host: func() *fakeHost {
				return newFakeHost().disk("/dev/sdb", "", 9).disk("/dev/sdc", "", 9).
					pool("tank", []topVdev{{kind: "mirror", devices: []string{"/dev/sdb1", "/dev/sdc1"}}}, "/mnt")
			},
		},
		{
			name: "existing_datasets_nothing",
			args: "pool: rpool\ndevices: [/dev/sda2]\n" + seedDatasets,
			host: seededHost,
		},
		{
			name: "existing_datasets_properties",
			args: "pool: rpool\ndevices: [/dev/sda2]\nproperties: {autotrim: on}\nroot_properties: {compression: zstd, normalization: none}\n" + seedDatasets +
				"  - {name: reserved, mountpoint: none, properties: {refreservation: 1G}}\n",
			host: func() *fakeHost {
				h := seededHost()
				h.imported["rpool"].props["autotrim"] = "off"
				h.datasets["rpool/reserved"] = map[string]string{"mountpoint": "none", "refreservation": "1073741824"}
				return h
			},
		},
		{
			name: "existing_datasets_unmounted",
			args: "pool: rpool\ndevices: [/dev/sda2]\n" + seedDatasets,
			host: func() *fakeHost {
				h := seededHost()
				delete(h.mounts, "/mnt/home")
				delete(h.datasets, "rpool/home")
				return h
			},
		},
		{
			name: "foreign_data_refused",
			args: "pool: rpool\nvdev: mirror\ndevices: [/dev/sda2, /dev/sdb2]\n",
			host: func() *fakeHost {
				h := newFakeHost().disk("/dev/sda", "", 2).disk("/dev/sdb", "", 2)
				h.devices["/dev/sda2"].sig = map[string]string{"TYPE": "ext4", "USAGE": "filesystem", "LABEL": "nixos", "UUID": "3e6f"}
				h.devices["/dev/sdb2"].sig = map[string]string{"TYPE": "zfs_member", "LABEL": "zroot"}
				return h
			},
		},
		{
			name: "foreign_whole_disk_refused",
			args: "pool: tank\ndevices: [/dev/sdb]\n",
			host: func() *fakeHost {
				h := newFakeHost().disk("/dev/sdb", "", 2)
				h.devices["/dev/sdb1"].sig = map[string]string{"TYPE": "ext4"}
				h.devices["/dev/sdb2"].sig = map[string]string{"TYPE": "swap", "USAGE": "other"}
				return h
			},
		},
		{
			name: "wipe_true",
			args: "pool: rpool\nvdev: mirror\ndevices: [/dev/sda2, /dev/sdb2]\nwipe: true\n" + seedDatasets,
			host: func() *fakeHost {
				h := newFakeHost().disk("/dev/sda", "", 2).disk("/dev/sdb", "", 2)
				h.devices["/dev/sda2"].sig = map[string]string{"TYPE": "ext4", "USAGE": "filesystem", "LABEL": "nixos", "UUID": "3e6f"}
				h.devices["/dev/sdb2"].sig = map[string]string{"TYPE": "zfs_member", "LABEL": "zroot"}
				return h
			},
		},
		{
			name: "wipe_whole_disk",
			args: "pool: tank\ndevices: [/dev/sdb]\nwipe: true\n",
			host: func() *fakeHost {
				h := newFakeHost().disk("/dev/sdb", "", 2)
				h.devices["/dev/sdb1"].sig = map[string]string{"TYPE": "ext4"}
				return h
			},
		},
		{
			name: "stale_label_of_same_pool",
			args: "pool: rpool\ndevices: [/dev/sda2]\n",
			host: func() *fakeHost {
				h := newFakeHost().disk("/dev/sda", "", 2)
				h.devices["/dev/sda2"].sig = map[string]string{"TYPE": "zfs_member", "LABEL": "rpool"}
				return h
			},
		},
		{
			name: "ambivalent_refused",
			args: "pool: rpool\ndevices: [/dev/sda2]\n",
			host: func() *fakeHost {
				h := newFakeHost().disk("/dev/sda", "", 2)
				h.devices["/dev/sda2"].sig = map[string]string{"AMBIVALENT": "/dev/sda2"}
				return h
			},
		},
		{
			name: "member_of_imported_pool_refused",
			args: "pool: rpool\ndevices: [/dev/sdb2]\nwipe: true\n",
			host: func() *fakeHost {
				return newFakeHost().disk("/dev/sda", "", 2).disk("/dev/sdb", "", 2).
					pool("zroot", []topVdev{{devices: []string{"/dev/sdb2"}}}, "")
			},
		},
		{
			name: "mounted_device_refused",
			args: "pool: rpool\ndevices: [/dev/sda]\nwipe: true\n",
			host: func() *fakeHost {
				h := newFakeHost().disk("/dev/sda", "", 2)
				h.devices["/dev/sda1"].mountpoint = "/boot"
				return h
			},
		},
		{
			name: "missing_device",
			args: "pool: rpool\ndevices: [/dev/sdc2]\n",
			host: func() *fakeHost { return newFakeHost().disk("/dev/sda", "", 2).disk("/dev/nvme0n1", "", 1) },
		},
		{
			name: "layout_mismatch",
			args: "pool: rpool\nvdev: mirror\ndevices: [/dev/sda2, /dev/sdb2]\n",
			host: func() *fakeHost {
				return newFakeHost().disk("/dev/sda", "", 2).disk("/dev/sdb", "", 2).
					pool("rpool", []topVdev{{devices: []string{"/dev/sda2"}}}, "/mnt")
			},
		},
		{
			name: "exported_layout_mismatch",
			args: "pool: rpool\nvdev: raidz\ndevices: [/dev/sda2, /dev/sdb2, /dev/sdc2]\n",
			host: func() *fakeHost {
				return newFakeHost().disk("/dev/sda", "", 2).disk("/dev/sdb", "", 2).disk("/dev/sdc", "", 2).
					offer(&fakePool{name: "rpool", id: "7", vdevs: []topVdev{{kind: "mirror", devices: []string{"/dev/sda2", "/dev/sdb2"}}}})
			},
		},
		{
			name: "exported_on_other_devices",
			args: "pool: rpool\ndevices: [/dev/sdb2]\n",
			host: func() *fakeHost {
				return newFakeHost().disk("/dev/sda", "", 2).disk("/dev/sdb", "", 2).
					offer(&fakePool{name: "rpool", id: "7", vdevs: []topVdev{{devices: []string{"/dev/sda2"}}}})
			},
		},
		{
			name: "exported_whole_disks",
			args: "pool: tank\nvdev: mirror\ndevices: [/dev/disk/by-id/virtio-zfsvm-0, /dev/disk/by-id/virtio-zfsvm-1]\n",
			host: func() *fakeHost {
				h := newFakeHost().disk("/dev/vda", "virtio-zfsvm-0", 9).disk("/dev/vdb", "virtio-zfsvm-1", 9)
				h.offer(&fakePool{name: "tank", id: "1835289159644143566",
					vdevs: []topVdev{{kind: "mirror", devices: []string{"/dev/disk/by-id/virtio-zfsvm-0-part1", "/dev/disk/by-id/virtio-zfsvm-1-part1"}}}})
				// zpool import shows whole disks without their partition.
				h.exported[0].vdevs = []topVdev{{kind: "mirror", devices: []string{"virtio-zfsvm-0", "virtio-zfsvm-1"}}}
				return h
			},
		},
		{
			name: "other_mount_in_the_way",
			args: "pool: rpool\ndevices: [/dev/sda2]\n" + seedDatasets,
			host: func() *fakeHost {
				h := newFakeHost().disk("/dev/sda", "", 2)
				h.mounts["/mnt"] = [2]string{"/dev/sda1", "ext4"}
				return h
			},
		},
		{
			name: "export_imported",
			args: "pool: rpool\nstate: exported\n" + seedDatasets,
			host: seededHost,
		},
		{
			name: "export_already_exported",
			args: "pool: rpool\nstate: exported\n",
			host: func() *fakeHost { return newFakeHost().disk("/dev/sda", "", 2) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := moduletest.New(t, Spec, tt.args)
			h := tt.host()
			p, err := m.Check(context.Background(), h)
			got := ""
			if err != nil {
				got = "error: " + err.Error() + "\n"
			} else {
				got = moduletest.FormatPlan(p)
			}
			for _, l := range h.logs {
				got += "log: " + l + "\n"
			}
			moduletest.Golden(t, filepath.Join("testdata", tt.name+".golden"), got, *update)
			if err != nil {
				return
			}
			if _, err := m.Apply(context.Background(), h, p); err != nil {
				t.Fatalf("apply: %v", err)
			}
			// Apply runs exactly the commands the plan shows, in order,
			// besides the existence checks of datasets in an imported pool.
			var ran []string
			for _, r := range h.runs {
				if !strings.HasPrefix(r, "zfs list ") {
					ran = append(ran, r)
				}
			}
			if !slices.Equal(ran, p.Commands()) {
				t.Errorf("apply ran\n  %s\nplan shows\n  %s", strings.Join(ran, "\n  "), strings.Join(p.Commands(), "\n  "))
			}
		})
	}
}

// seededHost has the seed's layout in place: rpool on sda2 imported under
// /mnt, its datasets created and mounted.
func seededHost() *fakeHost {
	h := newFakeHost().disk("/dev/sda", "", 2).pool("rpool", []topVdev{{devices: []string{"/dev/sda2"}}}, "/mnt")
	h.datasets["rpool/root"] = map[string]string{"mountpoint": "none"}
	h.datasets["rpool/root/nixos"] = map[string]string{"mountpoint": "legacy"}
	h.datasets["rpool/home"] = map[string]string{"mountpoint": "legacy"}
	h.mounts["/mnt"] = [2]string{"rpool/root/nixos", "zfs"}
	h.mounts["/mnt/home"] = [2]string{"rpool/home", "zfs"}
	return h
}

func TestCheckProbesOnlyReadOnly(t *testing.T) {
	h := newFakeHost().disk("/dev/sda", "", 2).offer(&fakePool{name: "rpool", id: "1", vdevs: []topVdev{{devices: []string{"/dev/sda2"}}}})
	m := moduletest.New(t, Spec, "pool: rpool\ndevices: [/dev/sda2]\n"+seedDatasets)
	if _, err := m.Check(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	for _, p := range h.probes {
		if strings.HasPrefix(p, "zpool import -N") || strings.HasPrefix(p, "zpool create") || strings.HasPrefix(p, "zfs create") {
			t.Errorf("check probed %q", p)
		}
	}
	if len(h.runs) != 0 {
		t.Errorf("check ran %q", h.runs)
	}
}

// Check lists the mounts once, however many datasets it mounts: each probe
// is a round trip.
func TestCheckListsMountsOnce(t *testing.T) {
	h := newFakeHost().disk("/dev/sda", "", 3).disk("/dev/sdb", "", 3)
	m := moduletest.New(t, Spec, "pool: rpool\nvdev: mirror\ndevices: [/dev/sda3, /dev/sdb3]\n"+seedDatasets)
	p, err := m.Check(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	var mounts, listings int
	for _, c := range p.Changes {
		if strings.HasPrefix(c.Summary, "mount ") {
			mounts++
		}
	}
	for _, l := range h.probes {
		if strings.HasPrefix(l, "findmnt ") {
			listings++
		}
	}
	if mounts < 2 || listings != 1 {
		t.Errorf("%d mounts planned with %d listings of the mounts, want several with one", mounts, listings)
	}
}

func TestApplySkipsDatasetsTheImportedPoolHas(t *testing.T) {
	h := newFakeHost().disk("/dev/sda", "", 2).offer(&fakePool{name: "rpool", id: "1", vdevs: []topVdev{{devices: []string{"/dev/sda2"}}}})
	m := moduletest.New(t, Spec, "pool: rpool\ndevices: [/dev/sda2]\n"+seedDatasets)
	p, err := m.Check(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	// What the import brings back.
	h.datasets["rpool/root"] = map[string]string{}
	h.datasets["rpool/home"] = map[string]string{}
	if _, err := m.Apply(context.Background(), h, p); err != nil {
		t.Fatal(err)
	}
	var created []string
	for _, r := range h.runs {
		if strings.HasPrefix(r, "zfs create") {
			created = append(created, r)
		}
	}
	if want := []string{"zfs create -p -o mountpoint=legacy rpool/root/nixos"}; !slices.Equal(created, want) {
		t.Errorf("created %q, want %q", created, want)
	}
}

func TestCheckFailsWhenProbeFails(t *testing.T) {
	h := newFakeHost().disk("/dev/sda", "", 2)
	h.failOnProbe = "blkid"
	m := moduletest.New(t, Spec, "pool: rpool\ndevices: [/dev/sda2]\n")
	_, err := m.Check(context.Background(), h)
	if !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("err = %v, want it to wrap ErrUnreachable", err)
	}
}

func TestCheckWithoutZFS(t *testing.T) {
	h := newFakeHost()
	h.failOnProbe = ""
	m := moduletest.New(t, Spec, "pool: rpool\ndevices: [/dev/sda2]\n")
	_, err := m.Check(context.Background(), noZFS{h})
	if err == nil || !strings.Contains(err.Error(), "zpool not found: ZFS needs") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckWithoutZFSModule(t *testing.T) {
	m := moduletest.New(t, Spec, "pool: rpool\ndevices: [/dev/sda2]\n")
	_, err := m.Check(context.Background(), noModule{newFakeHost()})
	if err == nil || !strings.Contains(err.Error(), "ZFS kernel module is not loaded (") || !strings.Contains(err.Error(), "modprobe zfs") {
		t.Fatalf("err = %v", err)
	}
}

type noModule struct{ *fakeHost }

func (n noModule) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	return result(cmd, 1, "", "The ZFS modules are not loaded.\nTry running '/sbin/modprobe zfs' as root to load them.\n")
}

type noZFS struct{ *fakeHost }

func (n noZFS) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	return result(cmd, 127, "", "sh: zpool: not found\n")
}

func TestNewValidates(t *testing.T) {
	tests := []struct{ args, want string }{
		{"devices: [/dev/sda2]", `missing required key "pool"`},
		{"pool: mirror0\ndevices: [/dev/sda2]", "pool name"},
		{"pool: 1pool\ndevices: [/dev/sda2]", "pool name"},
		{"pool: rpool", "devices is required"},
		{"pool: rpool\ndevices: [sda2]", "want a device path under /dev"},
		{"pool: rpool\nvdev: mirror\ndevices: [/dev/sda2]", "needs at least 2 devices"},
		{"pool: rpool\nvdev: raidz2\ndevices: [/dev/sda, /dev/sdb]", "needs at least 3 devices"},
		{"pool: rpool\nvdev: raid5\ndevices: [/dev/sda]", `vdev "raid5"`},
		{"pool: rpool\ndevices: [/dev/sda2, /dev/sda2]", "listed twice"},
		{"pool: rpool\ndevices: [/dev/sda2]\nvdevs: [{vdev: mirror, devices: [/dev/sdb, /dev/sdc]}]", "not both"},
		{"pool: rpool\ndevices: [/dev/sda2]\nashift: 20", "ashift 20"},
		{"pool: rpool\ndevices: [/dev/sda2]\nstate: absent", `state "absent"`},
		{"pool: rpool\ndevices: [/dev/sda2]\nroot: mnt", `root "mnt"`},
		{"pool: rpool\ndevices: [/dev/sda2]\nproperties: {ashift: 12}", "ashift and root have their own"},
		{"pool: rpool\ndevices: [/dev/sda2]\nroot_properties: {mountpoint: here}", "root_properties mountpoint"},
		{"pool: rpool\ndevices: [/dev/sda2]\ndatasets: [{name: /home}]", "relative to the pool"},
		{"pool: rpool\ndevices: [/dev/sda2]\ndatasets: [{name: 'a b'}]", "each part holds only"},
		{"pool: rpool\ndevices: [/dev/sda2]\ndatasets: [{name: a}, {name: a}]", "listed twice"},
		{"pool: rpool\ndevices: [/dev/sda2]\ndatasets: [{name: a, mount: home}]", `mount "home"`},
		{"pool: rpool\ndevices: [/dev/sda2]\ndatasets: [{name: a, mountpoint: none, mount: /a}]", "needs mountpoint legacy"},
		{"pool: rpool\ndevices: [/dev/sda2]\ndatasets: [{name: a, mountpoint: /a, mount: /b}]", "differs from its mountpoint"},
		{"pool: rpool\ndevices: [/dev/sda2]\ndatasets: [{name: a, mount: /a}, {name: b, mount: /a}]", "both mounted at /a"},
		{"pool: rpool\ndevices: [/dev/sda2]\ndatasets: [{name: a, properties: {mountpoint: /x}}]", "mountpoint has its own"},
		{"pool: rpool\ndevices: [/dev/sda2]\nsize: 1", `unknown key "size"`},
	}
	for _, tt := range tests {
		_, err := Spec.New(moduletest.Decoder(tt.args))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want it to contain %q", tt.args, err, tt.want)
		}
	}
	ok := []string{
		"pool: rpool\nstate: exported",
		"pool: rpool\ndevices: [/dev/sda2]\nroot_properties: {atime: off, relatime: on}\nproperties: {autotrim: true}",
		"pool: rpool\ndevices: [/dev/sda2]\nashift: 0\nroot: /",
		"pool: rpool\ndevices: [/dev/sda2]\ndatasets: [{name: a, mountpoint: /srv, mount: /srv}]",
	}
	for _, args := range ok {
		if _, err := Spec.New(moduletest.Decoder(args)); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
}

func TestPropertiesFromYAMLBooleans(t *testing.T) {
	m, err := Spec.New(moduletest.Decoder("pool: rpool\ndevices: [/dev/sda2]\nproperties: {autotrim: true}\nroot_properties: {atime: false, recordsize: 1048576}"))
	if err != nil {
		t.Fatal(err)
	}
	c := m.(*module).cfg
	if c.props["autotrim"] != "on" || c.rootProps["atime"] != "off" || c.rootProps["recordsize"] != "1048576" {
		t.Errorf("props %v, root props %v", c.props, c.rootProps)
	}
}

func TestSameValue(t *testing.T) {
	tests := []struct {
		prop, want, got string
		same            bool
	}{
		{"compression", "lz4", "lz4", true},
		{"compression", "zstd", "lz4", false},
		{"acltype", "posixacl", "posix", true},
		{"acltype", "posixacl", "off", false},
		{"normalization", "formD", "formD", true},
		{"refreservation", "1G", "1073741824", true},
		{"refreservation", "1G", "1073741825", false},
		{"quota", "50G", "53687091200", true},
		{"quota", "none", "0", true},
		{"recordsize", "1M", "1048576", true},
		{"recordsize", "128K", "131072", true},
		{"recordsize", "131072", "131072", true},
		{"atime", "off", "on", false},
		{"autotrim", "ON", "on", true},
	}
	for _, tt := range tests {
		if got := sameValue(tt.prop, tt.want, tt.got); got != tt.same {
			t.Errorf("sameValue(%s, %s, %s) = %v", tt.prop, tt.want, tt.got, got)
		}
	}
}

func TestMountOrder(t *testing.T) {
	m := moduletest.New(t, Spec, `pool: rpool
devices: [/dev/sda2]
datasets:
  - {name: var-log, mount: /var/log}
  - {name: home-x, mount: /home/x}
  - {name: home, mount: /home}
  - {name: var, mount: /var}
  - {name: home-dash, mount: /home-dash}
  - {name: root, mount: /}
`)
	var got []string
	for _, d := range mountList(m.(*module).cfg) {
		got = append(got, d.mount)
	}
	want := []string{"/", "/home", "/home/x", "/home-dash", "/var", "/var/log"}
	if !slices.Equal(got, want) {
		t.Errorf("mount order %q, want %q", got, want)
	}
}

func TestPartitionPath(t *testing.T) {
	tests := map[string]string{
		"/dev/sda":                   "/dev/sda1",
		"/dev/vdb":                   "/dev/vdb1",
		"/dev/nvme0n1":               "/dev/nvme0n1p1",
		"/dev/disk/by-id/ata-X":      "/dev/disk/by-id/ata-X-part1",
		"/dev/disk/by-id/nvme-eui.1": "/dev/disk/by-id/nvme-eui.1-part1",
	}
	for disk, want := range tests {
		if got := partitionPath(disk, 1); got != want {
			t.Errorf("partitionPath(%s) = %s, want %s", disk, got, want)
		}
	}
}

var _ modules.Module = (*module)(nil)
