package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/hostfs"
)

// FindTool picks the download tool: want is auto, curl or wget. auto takes
// curl when the host has it, else wget.
func FindTool(ctx context.Context, h modules.ReadOnlyHost, want string) (string, error) {
	found, err := hostfs.LookPath(ctx, h, "curl", "wget")
	if err != nil {
		return "", err
	}
	switch want {
	case "curl", "wget":
		if _, ok := found[want]; !ok {
			return "", fmt.Errorf("%s is not installed (tool: %s): use tool: auto, or install it first", want, want)
		}
		return want, nil
	}
	for _, t := range []string{"curl", "wget"} {
		if _, ok := found[t]; ok {
			return t, nil
		}
	}
	return "", errors.New("neither curl nor wget is installed: install one first (apt-get install -y curl)")
}

// DefaultProgressEvery is how often a progress line reaches the log.
const DefaultProgressEvery = 5 * time.Second

// ProgressLog passes a command's progress output (curl's meter, wget's
// dots, unsquashfs's bar) to a host log one line at a time, taking
// carriage returns as line ends too, and at most one line per interval so
// that a long download does not flood the log. Flush logs the last line.
type ProgressLog struct {
	log   func(format string, args ...any)
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	partial []byte
	pending string
	last    time.Time
}

// NewProgressLog logs through log at most once per every (0: the default).
func NewProgressLog(log func(format string, args ...any), every time.Duration) *ProgressLog {
	if every <= 0 {
		every = DefaultProgressEvery
	}
	return &ProgressLog{log: log, every: every, now: time.Now}
}

// Write takes output as it comes.
func (p *ProgressLog) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexAny(p.partial, "\r\n")
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(p.partial[:i]))
		p.partial = p.partial[i+1:]
		if line == "" {
			continue
		}
		if now := p.now(); p.last.IsZero() || now.Sub(p.last) >= p.every {
			p.log("%s", line)
			p.last, p.pending = now, ""
		} else {
			p.pending = line
		}
	}
	return len(b), nil
}

// Flush logs what was held back: the last line, which holds the outcome.
func (p *ProgressLog) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rest := strings.TrimSpace(string(p.partial)); rest != "" {
		p.pending = rest
	}
	p.partial = nil
	if p.pending != "" {
		p.log("%s", p.pending)
		p.pending = ""
	}
}
