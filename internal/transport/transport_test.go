package transport

import (
	"io/fs"
	"testing"
)

func TestChmodMode(t *testing.T) {
	for _, tt := range []struct {
		mode fs.FileMode
		want uint32
	}{
		{0o644, 0o644},
		{0o700 | fs.ModeDir, 0o700},
		{0o755 | fs.ModeSetuid, 0o4755},
		{0o2750&0o777 | fs.ModeSetgid, 0o2750},
		{0o777 | fs.ModeSticky | fs.ModeDir, 0o1777},
	} {
		if got := ChmodMode(tt.mode); got != tt.want {
			t.Errorf("ChmodMode(%v) = %o, want %o", tt.mode, got, tt.want)
		}
	}
}
