package fileplan

import (
	"os"
	"testing"
)

func TestFileMode(t *testing.T) {
	tests := map[Mode]os.FileMode{
		0o644:  0o644,
		0o4755: 0o755 | os.ModeSetuid,
		0o2775: 0o775 | os.ModeSetgid,
		0o1777: 0o777 | os.ModeSticky,
	}
	for m, want := range tests {
		if got := m.FileMode(); got != want {
			t.Errorf("%v.FileMode() = %v, want %v", m, got, want)
		}
	}
}
