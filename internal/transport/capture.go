package transport

import (
	"bytes"
	"fmt"
)

// Capture keeps what a command writes to one stream for its Result. With a
// positive limit it keeps at most that many bytes, the first and the last
// halves, so that neither a command's first lines nor its final error are
// lost, and a command printing gigabytes costs no more memory than that.
type Capture struct {
	limit   int
	note    string
	head    bytes.Buffer
	tail    []byte // ring of the last limit/2 bytes once head is full
	next    int    // where the ring writes next
	dropped int64
}

// NewCapture keeps at most limit bytes (0: everything); note is added to
// the line that marks where bytes were dropped.
func NewCapture(limit int, note string) *Capture {
	return &Capture{limit: limit, note: note}
}

func (c *Capture) Write(p []byte) (int, error) {
	n := len(p)
	if c.limit <= 0 {
		c.head.Write(p)
		return n, nil
	}
	headMax := c.limit - c.limit/2
	if room := headMax - c.head.Len(); room > 0 {
		k := min(room, len(p))
		c.head.Write(p[:k])
		p = p[k:]
	}
	tailMax := c.limit / 2
	for len(p) > 0 && tailMax > 0 {
		if len(c.tail) < tailMax {
			k := min(tailMax-len(c.tail), len(p))
			c.tail = append(c.tail, p[:k]...)
			p = p[k:]
			continue
		}
		// Full: overwrite the oldest byte onwards.
		k := min(tailMax-c.next, len(p))
		copy(c.tail[c.next:], p[:k])
		c.dropped += int64(k)
		c.next = (c.next + k) % tailMax
		p = p[k:]
	}
	if tailMax == 0 {
		c.dropped += int64(len(p))
	}
	return n, nil
}

// Dropped is how many bytes were not kept.
func (c *Capture) Dropped() int64 { return c.dropped }

// Bytes is what was kept; when bytes were dropped, a line between the
// head and the tail says how many.
func (c *Capture) Bytes() []byte {
	out := bytes.Clone(c.head.Bytes())
	if c.dropped > 0 {
		out = append(out, TruncatedMarker(c.dropped, c.note)...)
	}
	out = append(out, c.tail[c.next:]...)
	return append(out, c.tail[:c.next]...)
}

// TruncatedMarker is the line that stands for dropped output.
func TruncatedMarker(dropped int64, note string) string {
	s := fmt.Sprintf("\n[... output truncated: %d bytes dropped here", dropped)
	if note != "" {
		s += "; " + note
	}
	return s + " ...]\n"
}
