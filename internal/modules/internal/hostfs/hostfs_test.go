package hostfs

import "testing"

func TestFormatBytes(t *testing.T) {
	tests := map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 1 << 30: "1.0 GiB", 2469606195: "2.3 GiB"}
	for n, want := range tests {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParsePairs(t *testing.T) {
	got := parsePairs(`TARGET="/root/my\x20iso" SOURCE="/dev/loop0" FSTYPE="iso9660" OPTIONS="ro"`)
	if got["TARGET"] != "/root/my iso" || got["SOURCE"] != "/dev/loop0" || got["OPTIONS"] != "ro" {
		t.Errorf("parsePairs = %q", got)
	}
}
