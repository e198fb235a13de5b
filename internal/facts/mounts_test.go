package facts

import (
	"fmt"
	"testing"
)

func TestParseProcMounts(t *testing.T) {
	got := ParseProcMounts("/dev/sda1 /mnt ext4 rw 0 0\n/dev/sdb1 /mnt/my\\040data ext4 rw 0 0\nbad\n")
	want := []Mount{{"/dev/sda1", "/mnt", "ext4"}, {"/dev/sdb1", "/mnt/my data", "ext4"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := UnescapeOctal(`a\134b\0`); got != `a\b\0` {
		t.Errorf("unescape = %q", got)
	}
}
