package partition

import (
	"os"
	"reflect"
	"testing"
)

func TestParseBlkid(t *testing.T) {
	out, err := os.ReadFile("testdata/probes/blkid-old-os.txt")
	if err != nil {
		t.Fatal(err)
	}
	blocks := parseBlkid(out)
	if len(blocks) != 3 {
		t.Fatalf("%d blocks, want 3: %v", len(blocks), blocks)
	}
	if got := blocks["/dev/nvme0n1"]["PTTYPE"]; got != "dos" {
		t.Errorf("disk PTTYPE = %q", got)
	}
	p1 := blocks["/dev/nvme0n1p1"]
	want := map[string]string{"TYPE": "ext4", "LABEL": "debian", "PART_ENTRY_FLAGS": "0x80", "PART_ENTRY_OFFSET": "2048", "PART_ENTRY_SIZE": "3143680", "PART_ENTRY_NUMBER": "1"}
	for k, v := range want {
		if p1[k] != v {
			t.Errorf("p1 %s = %q, want %q", k, p1[k], v)
		}
	}
	if got := parseBlkid([]byte("DEVNAME=/dev/sda1\nLABEL=my\\ disk\\\\x\nTYPE=ext4\n")); got["/dev/sda1"]["LABEL"] != `my disk\x` {
		t.Errorf("escaped label = %q", got["/dev/sda1"]["LABEL"])
	}
	if got := parseBlkid(nil); len(got) != 0 {
		t.Errorf("empty output: %v", got)
	}
}

func TestParseLsblk(t *testing.T) {
	tests := []struct {
		file string
		want *diskState
	}{
		{
			file: "lsblk-old-os.json",
			want: &diskState{Given: "/dev/disk/by-id/x", devState: devState{Path: "/dev/nvme0n1", MajMin: "7:0", Bytes: 2147483648}, Parts: []devState{
				{Path: "/dev/nvme0n1p1", MajMin: "259:2", Bytes: 1609564160, Mounts: []string{"/mnt"}},
				{Path: "/dev/nvme0n1p2", MajMin: "259:3", Bytes: 536870912, Swap: true},
			}},
		},
		{
			file: "lsblk-md-old.json",
			want: &diskState{Given: "/dev/disk/by-id/x", devState: devState{Path: "/dev/sda", MajMin: "8:0", Bytes: 2000398934016}, Parts: []devState{
				{Path: "/dev/sda1", MajMin: "8:1", Bytes: 536870912, Holders: []string{"md127 (raid1)"}},
				{Path: "/dev/sda2", MajMin: "8:2", Bytes: 1999860252672},
			}},
		},
	}
	for _, tt := range tests {
		out, err := os.ReadFile("testdata/probes/" + tt.file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseLsblk("/dev/disk/by-id/x", out)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", tt.file, got, tt.want)
		}
	}
	part := []byte(`{"blockdevices": [{"name": "sda1", "size": 1, "type": "part", "mountpoint": null, "maj:min": "8:1"}]}`)
	if _, err := parseLsblk("/dev/sda1", part); err == nil || err.Error() != "/dev/sda1 is a part, not a whole disk" {
		t.Errorf("partition as disk: %v", err)
	}
}

func TestParseSwaps(t *testing.T) {
	data := "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/sda3                               partition\t497660\t\t0\t\t-2\n/sda3 partition 1 0 -3\n"
	if got, want := parseSwaps([]byte(data)), []string{"/dev/sda3", "/sda3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("parseSwaps = %q, want %q", got, want)
	}
}
