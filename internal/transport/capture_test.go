package transport

import (
	"bytes"
	"strings"
	"testing"
)

func TestCapture(t *testing.T) {
	tests := []struct {
		name   string
		limit  int
		writes []string
		want   string
	}{
		{name: "no limit", limit: 0, writes: []string{"abc", "def"}, want: "abcdef"},
		{name: "under the limit", limit: 10, writes: []string{"abc", "def"}, want: "abcdef"},
		{name: "at the limit", limit: 6, writes: []string{"abc", "def"}, want: "abcdef"},
		{name: "head and tail", limit: 6, writes: []string{"abcdefgh", "ijkl"}, want: "abc" + TruncatedMarker(6, "see h1.log") + "jkl"},
		{name: "many small writes", limit: 4, writes: strings.Split("0123456789", ""), want: "01" + TruncatedMarker(6, "see h1.log") + "89"},
		{name: "odd limit", limit: 3, writes: []string{"abcdef"}, want: "ab" + TruncatedMarker(3, "see h1.log") + "f"},
		{name: "limit 1", limit: 1, writes: []string{"abc"}, want: "a" + TruncatedMarker(2, "see h1.log")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCapture(tt.limit, "see h1.log")
			for _, w := range tt.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := string(c.Bytes()); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// A command printing far more than the limit costs the limit in memory.
func TestCaptureBounded(t *testing.T) {
	c := NewCapture(64<<10, "")
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for range 50 {
		c.Write(chunk)
	}
	if got := c.head.Cap() + cap(c.tail); got > 256<<10 {
		t.Errorf("kept %d bytes of buffers for a 64 KiB limit", got)
	}
	if c.Dropped() != 50<<20-64<<10 {
		t.Errorf("dropped %d", c.Dropped())
	}
}
