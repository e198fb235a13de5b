package zfs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
)

// testdata/real holds outputs captured in a guest of internal/zfsvm
// (OpenZFS 2.1.11, util-linux 2.38), except import-other-system.txt and
// status-degraded.txt, written after OpenZFS 2.1's format for states a
// test guest does not reach.
func real(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "real", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		file, pool string
		want       []topVdev
	}{
		{"status-mirror-whole-disks.txt", "tank", []topVdev{{kind: "mirror", devices: []string{"/dev/disk/by-id/virtio-zfsvm-0-part1", "/dev/disk/by-id/virtio-zfsvm-1-part1"}}}},
		{"status-stripe-partitions.txt", "tank", []topVdev{{devices: []string{"/dev/vda2"}}, {devices: []string{"/dev/vdb1"}}}},
		{"status-degraded.txt", "rpool", []topVdev{{kind: "raidz1", devices: []string{"/dev/vda2", "/dev/vdb2", "/dev/vdc2"}}}},
	}
	for _, tt := range tests {
		got, err := parseConfig(statusConfig(real(t, tt.file)), tt.pool)
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.file, got, tt.want)
		}
	}
	if _, err := parseConfig(statusConfig(real(t, "status-stripe-partitions.txt")), "rpool"); err == nil {
		t.Error("a config without the pool parsed")
	}
}

func TestParseImport(t *testing.T) {
	pools := parseImport(real(t, "import-mirror-whole-disks.txt"))
	if len(pools) != 1 || pools[0].name != "tank" || pools[0].id != "1835289159644143566" || pools[0].state != "ONLINE" {
		t.Fatalf("pools = %+v", pools)
	}
	got, err := parseConfig(pools[0].config, "tank")
	if err != nil {
		t.Fatal(err)
	}
	if want := []topVdev{{kind: "mirror", devices: []string{"virtio-zfsvm-0", "virtio-zfsvm-1"}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("config %+v, want %+v", got, want)
	}

	pools = parseImport(real(t, "import-stripe-partitions.txt"))
	got, err = parseConfig(pools[0].config, "tank")
	if err != nil {
		t.Fatal(err)
	}
	if want := []topVdev{{devices: []string{"virtio-zfsvm-0-part2"}}, {devices: []string{"virtio-zfsvm-1-part1"}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("config %+v, want %+v", got, want)
	}

	pools = parseImport(real(t, "import-other-system.txt"))
	if len(pools) != 2 {
		t.Fatalf("pools = %+v", pools)
	}
	r, b := pools[0], pools[1]
	if r.name != "rpool" || r.id != "5765270396553456223" || !strings.Contains(r.status, "another system") || !strings.Contains(r.action, "the '-f' flag") {
		t.Errorf("rpool = %+v", r)
	}
	got, err = parseConfig(r.config, "rpool")
	if err != nil {
		t.Fatal(err)
	}
	if want := []topVdev{{kind: "mirror", devices: []string{"ata-A-part2", "ata-B-part2"}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("config %+v, want %+v (logs left out)", got, want)
	}
	if b.name != "backup" || b.state != "UNAVAIL" || !strings.Contains(b.action, "Attach the missing devices") {
		t.Errorf("backup = %+v", b)
	}
	if pools := parseImport(""); len(pools) != 0 {
		t.Errorf("empty listing gave %+v", pools)
	}
}

func TestParseBlkid(t *testing.T) {
	tests := map[string]map[string]string{
		"blkid-gpt-disk.txt":   {"PTUUID": "ccc7a817-be77-d64b-8e51-96f4d308e116", "PTTYPE": "gpt"},
		"blkid-zfs-member.txt": {"VERSION": "5000", "LABEL": "tank", "UUID": "1835289159644143566", "UUID_SUB": "5579687163091409345", "BLOCK_SIZE": "4096", "TYPE": "zfs_member", "USAGE": "filesystem"},
		"blkid-ext4.txt":       {"LABEL": "boot", "UUID": "164a9825-1ab1-40cf-bf6b-c3e891d57b3e", "VERSION": "1.0", "BLOCK_SIZE": "1024", "TYPE": "ext4", "USAGE": "filesystem"},
	}
	for file, want := range tests {
		if got := parseExport(real(t, file)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", file, got, want)
		}
	}
	// An empty partition: blkid -p still reports its partition entry.
	if got := parseExport("DEVNAME=/dev/vdb1\nPART_ENTRY_SCHEME=gpt\nPART_ENTRY_NUMBER=1\n"); len(got) != 0 {
		t.Errorf("empty partition parsed as %v", got)
	}
}

func TestParseLsblk(t *testing.T) {
	got := parseLsblk(real(t, "lsblk-whole-disk.txt"))
	want := []lsblkEntry{{"/dev/vda", "disk", ""}, {"/dev/vda1", "part", ""}, {"/dev/vda9", "part", ""}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	got = parseLsblk("/dev/sda disk \n/dev/sda1 part /mnt/a\\x20b\n/dev/sda2 part [SWAP]\n")
	want = []lsblkEntry{{"/dev/sda", "disk", ""}, {"/dev/sda1", "part", "/mnt/a b"}, {"/dev/sda2", "part", "[SWAP]"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseProperties(t *testing.T) {
	got := propertyValues([]byte(real(t, "zfs-get.txt")))
	want := map[string]string{"mountpoint": "legacy", "compression": "off", "acltype": "off", "refreservation": "0", "quota": "0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	got = propertyValues([]byte(real(t, "zpool-get.txt")))
	if got["altroot"] != "/mnt" || got["ashift"] != "0" {
		t.Errorf("zpool get: %v", got)
	}
	if f := strings.Fields(real(t, "findmnt-space.txt")); hostfs.Unescape(f[0]) != "tank/a b" || f[1] != "zfs" {
		t.Errorf("findmnt: %q", f)
	}
}
