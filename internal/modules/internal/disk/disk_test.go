package disk

import (
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
)

func TestPartitionPath(t *testing.T) {
	tests := []struct {
		disk string
		n    int
		want string
	}{
		{"/dev/sda", 1, "/dev/sda1"},
		{"/dev/sdaa", 12, "/dev/sdaa12"},
		{"/dev/vda", 2, "/dev/vda2"},
		{"/dev/xvdb", 3, "/dev/xvdb3"},
		{"/dev/nvme0n1", 1, "/dev/nvme0n1p1"},
		{"/dev/nvme10n2", 10, "/dev/nvme10n2p10"},
		{"/dev/mmcblk0", 2, "/dev/mmcblk0p2"},
		{"/dev/loop3", 1, "/dev/loop3p1"},
		{"/dev/md0", 1, "/dev/md0p1"},
		{"/dev/disk/by-id/ata-HGST_HUS726020ALA610_K5H0A1B2", 3, "/dev/disk/by-id/ata-HGST_HUS726020ALA610_K5H0A1B2-part3"},
		{"/dev/disk/by-id/nvme-SAMSUNG_MZVL2512HCJQ-00B00_S675NX0R1", 1, "/dev/disk/by-id/nvme-SAMSUNG_MZVL2512HCJQ-00B00_S675NX0R1-part1"},
		{"/dev/disk/by-path/pci-0000:00:1f.2-ata-1", 2, "/dev/disk/by-path/pci-0000:00:1f.2-ata-1-part2"},
	}
	for _, tt := range tests {
		if got := PartitionPath(tt.disk, tt.n); got != tt.want {
			t.Errorf("PartitionPath(%q, %d) = %q, want %q", tt.disk, tt.n, got, tt.want)
		}
	}
}

func TestPreferredByID(t *testing.T) {
	tests := []struct {
		links []string
		want  string
	}{
		{nil, ""},
		{[]string{"/dev/disk/by-id/wwn-0x5000cca2", "/dev/disk/by-id/ata-HGST_X_K5H"}, "/dev/disk/by-id/ata-HGST_X_K5H"},
		{[]string{"/dev/disk/by-id/nvme-eui.0025388", "/dev/disk/by-id/nvme-SAMSUNG_X_S67_1", "/dev/disk/by-id/nvme-SAMSUNG_X_S67"}, "/dev/disk/by-id/nvme-SAMSUNG_X_S67"},
		{[]string{"/dev/disk/by-id/wwn-0x1", "/dev/disk/by-id/usb-Stick"}, "/dev/disk/by-id/usb-Stick"},
		{[]string{"/dev/disk/by-id/nvme-nvme.144d-53", "/dev/disk/by-id/wwn-0x1"}, "/dev/disk/by-id/wwn-0x1"},
	}
	for _, tt := range tests {
		if got := PreferredByID(tt.links); got != tt.want {
			t.Errorf("PreferredByID(%q) = %q, want %q", tt.links, got, tt.want)
		}
	}
}

func TestFindAndStableName(t *testing.T) {
	f := &facts.Facts{Disks: []facts.Disk{
		{Path: "/dev/sda", SizeBytes: 8 << 30, ByID: []string{"/dev/disk/by-id/ata-A_1", "/dev/disk/by-id/wwn-0x1"}},
		{Path: "/dev/nvme0n1", SizeBytes: 1 << 40},
	}}
	tests := []struct {
		name, wantPath, wantStable, wantErr string
	}{
		{name: "/dev/sda", wantPath: "/dev/sda", wantStable: "/dev/disk/by-id/ata-A_1"},
		{name: "sda", wantPath: "/dev/sda", wantStable: "/dev/disk/by-id/ata-A_1"},
		{name: "/dev/disk/by-id/wwn-0x1", wantPath: "/dev/sda", wantStable: "/dev/disk/by-id/wwn-0x1"},
		{name: "/dev/nvme0n1", wantPath: "/dev/nvme0n1", wantStable: "/dev/nvme0n1"},
		{name: "/dev/sdb", wantErr: "no disk /dev/sdb; the host has /dev/sda (8.0 GiB), /dev/nvme0n1 (1.0 TiB)"},
	}
	for _, tt := range tests {
		d, err := Find(f, tt.name)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Find(%q) err = %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Find(%q): %v", tt.name, err)
			continue
		}
		if d.Path != tt.wantPath || StableName(d, tt.name) != tt.wantStable {
			t.Errorf("Find(%q) = %s, stable %s; want %s, %s", tt.name, d.Path, StableName(d, tt.name), tt.wantPath, tt.wantStable)
		}
	}
	if _, err := Find(nil, "/dev/sda"); err == nil || !strings.Contains(err.Error(), "no disks") {
		t.Errorf("Find without facts: %v", err)
	}
}

func TestHuman(t *testing.T) {
	tests := map[int64]string{
		512:               "512 B",
		4 << 10:           "4 KiB",
		512 << 20:         "512 MiB",
		8 << 30:           "8.0 GiB",
		12<<30 + 512<<20:  "12.5 GiB",
		2000398934016:     "1.8 TiB",
		1<<30 - 1:         "1023 MiB",
		3<<40 + 300<<30:   "3.3 TiB",
		int64(1.5 * 1024): "1 KiB",
	}
	for in, want := range tests {
		if got := Human(in); got != want {
			t.Errorf("Human(%d) = %q, want %q", in, got, want)
		}
	}
}
