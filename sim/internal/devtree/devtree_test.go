package devtree

import "testing"

func TestDiskNames(t *testing.T) {
	tests := []struct {
		kind  string
		index int
		name  string
		part2 string
	}{
		{SATA, 0, "sda", "sda2"},
		{SATA, 1, "sdb", "sdb2"},
		{SATA, 25, "sdz", "sdz2"},
		{SATA, 26, "sdaa", "sdaa2"},
		{NVMe, 0, "nvme0n1", "nvme0n1p2"},
		{NVMe, 3, "nvme3n1", "nvme3n1p2"},
	}
	for _, tt := range tests {
		d := &Disk{Name: DiskName(tt.kind, tt.index), Kind: tt.kind}
		if d.Name != tt.name || d.PartName(2) != tt.part2 {
			t.Errorf("%s %d: %s %s", tt.kind, tt.index, d.Name, d.PartName(2))
		}
	}
}

func TestPartitionsFileListsOnlyDevicesWithCapacity(t *testing.T) {
	got := partitionsFile(map[string]entry{
		"sda":              {major: 7, minor: 3, blocks: 8388608},
		"sda1":             {major: 259, minor: 0, blocks: 1024},
		"loop0":            {major: 7, minor: 0},
		"disk/by-id/x":     {link: "../../sda"},
		"disk/by-label/la": {link: "../../sda1"},
	})
	want := "major minor  #blocks  name\n\n   7        3    8388608 sda\n 259        0       1024 sda1\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}
