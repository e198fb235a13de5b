package nixosgen

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLayoutMounts(t *testing.T) {
	proc := `sysfs /sys sysfs rw 0 0
/dev/md127 / ext4 rw 0 0
rpool/root/nixos /mnt zfs rw,xattr 0 0
/dev/sda1 /mnt/boot ext4 rw 0 0
/dev/sdb1 /mnt/boot ext4 rw 0 0
rpool/home /mnt/home zfs rw 0 0
/dev/sda3 /mnt/srv/with\040space xfs rw 0 0
proc /mnt/proc proc rw 0 0
udev /mnt/dev devtmpfs rw 0 0
tmpfs /mnt/tmp tmpfs rw 0 0
/dev/loop0 /mnt/nix/store squashfs ro 0 0
/dev/sdc1 /mnt2 ext4 rw 0 0
`
	got, mounted := layoutMounts(proc, "/mnt")
	want := []mount{
		{Device: "rpool/root/nixos", Target: "/", FSType: "zfs"},
		{Device: "/dev/sdb1", Target: "/boot", FSType: "ext4"}, // the later mount hides the earlier
		{Device: "rpool/home", Target: "/home", FSType: "zfs"},
		{Device: "/dev/sda3", Target: "/srv/with space", FSType: "xfs"},
	}
	if !mounted || !reflect.DeepEqual(got, want) {
		t.Errorf("layoutMounts = %+v, %v\nwant %+v, true", got, mounted, want)
	}
	if _, mounted := layoutMounts("/dev/sda1 /mnt/boot ext4 rw 0 0\n", "/mnt"); mounted {
		t.Error("a mount below root counts as root mounted")
	}
	if got, mounted := layoutMounts(proc, "/"); !mounted || got[0].Target != "/" || got[0].Device != "/dev/md127" {
		t.Errorf("root / = %+v, %v", got, mounted)
	}
}

func TestMountHolding(t *testing.T) {
	mounts := []mount{{Target: "/", FSType: "zfs"}, {Target: "/boot/efi", FSType: "vfat"}}
	if m, _ := mountHolding(mounts, "/boot"); m.FSType != "zfs" {
		t.Errorf("/boot lives on %+v, want the zfs root", m)
	}
	if m, _ := mountHolding(append(mounts, mount{Target: "/boot", FSType: "ext4"}), "/boot"); m.FSType != "ext4" {
		t.Errorf("/boot lives on %+v, want its own ext4", m)
	}
	if _, ok := mountHolding(nil, "/boot"); ok {
		t.Error("found a mount among none")
	}
}

func TestStaleHardware(t *testing.T) {
	hw, err := os.ReadFile(filepath.Join("testdata", "hardware", "zfs.nix"))
	if err != nil {
		t.Fatal(err)
	}
	entries := hardwareFileSystems(string(hw))
	if len(entries) != 3 || entries[0] != (hwFileSystem{Target: "/", Device: "rpool/root/nixos", FSType: "zfs"}) {
		t.Fatalf("entries = %+v", entries)
	}
	layout := []mount{
		{Device: "rpool/root/nixos", Target: "/", FSType: "zfs"},
		{Device: "rpool/home", Target: "/home", FSType: "zfs"},
		{Device: "/dev/sda1", Target: "/boot", FSType: "ext4"},
	}
	exists := func([]string) []string { return nil }
	tests := []struct {
		name    string
		mounts  []mount
		missing func([]string) []string
		want    string
	}{
		{name: "matches", mounts: layout, missing: exists},
		{name: "new mount", mounts: append(slices.Clone(layout), mount{Device: "/dev/sda3", Target: "/srv", FSType: "xfs"}), missing: exists,
			want: "it has no entry for /srv (xfs), which is mounted now"},
		{name: "other fstype", mounts: []mount{{Device: "/dev/sda2", Target: "/", FSType: "ext4"}, layout[1], layout[2]}, missing: exists,
			want: "it says / is zfs, but ext4 is mounted there now"},
		{name: "other dataset", mounts: []mount{{Device: "tank/root", Target: "/", FSType: "zfs"}, layout[1], layout[2]}, missing: exists,
			want: "it mounts rpool/root/nixos at /, but tank/root is mounted there now"},
		{name: "gone mount", mounts: layout[:2], missing: exists,
			want: "it lists /boot, which is not mounted now"},
		{name: "new file system on the same mount", mounts: layout, missing: func(devs []string) []string { return devs },
			want: "/dev/disk/by-uuid/53e7efcf-73ba-4145-b503-aab590481958 no longer exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := staleHardware(entries, tt.mounts, tt.missing); got != tt.want {
				t.Errorf("staleHardware = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPartitionParent(t *testing.T) {
	for dev, want := range map[string]string{
		"/dev/sda1":      "/dev/sda",
		"/dev/sdab12":    "/dev/sdab",
		"/dev/nvme0n1p2": "/dev/nvme0n1",
		"/dev/vda3":      "/dev/vda",
		"/dev/disk/by-id/ata-HGST_X_PN2134-part2": "/dev/disk/by-id/ata-HGST_X_PN2134",
		"/dev/sda": "/dev/sda",
	} {
		if got := partitionParent(dev); got != want {
			t.Errorf("partitionParent(%s) = %s, want %s", dev, got, want)
		}
	}
}
