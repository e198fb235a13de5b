package fetch

import (
	"strings"
	"testing"
	"time"
)

func TestContentLength(t *testing.T) {
	tests := []struct {
		headers string
		want    int64
		ok      bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", 1234, true},
		{"HTTP/2 302\r\ncontent-length: 0\r\nlocation: x\r\n\r\nHTTP/2 200\r\ncontent-length: 1048576000\r\n\r\n", 1048576000, true},
		{"  HTTP/1.1 200 OK\n  Content-Length: 77\n", 77, true}, // wget -S indents
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := ContentLength([]byte(tt.headers))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ContentLength(%q) = %d, %v; want %d, %v", tt.headers, got, ok, tt.want, tt.ok)
		}
	}
}

func TestProgressLog(t *testing.T) {
	var logged []string
	clock := time.Unix(0, 0)
	p := NewProgressLog(func(f string, a ...any) { logged = append(logged, a[0].(string)) }, 5*time.Second)
	p.now = func() time.Time { return clock }
	p.Write([]byte("  % Total    % Received\n  0  100M    0     0\r  1  100M"))
	clock = clock.Add(time.Second)
	p.Write([]byte("    1M\r 50  100M   50M\r"))
	clock = clock.Add(5 * time.Second)
	p.Write([]byte("100  100M  100M\r\n"))
	p.Write([]byte("curl: done"))
	p.Flush()
	want := []string{"% Total    % Received", "100  100M  100M", "curl: done"}
	if strings.Join(logged, "|") != strings.Join(want, "|") {
		t.Errorf("logged %q, want %q", logged, want)
	}
}
