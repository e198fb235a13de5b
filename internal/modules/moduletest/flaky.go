package moduletest

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/transport"
)

// FlakyHost is a host whose SSH comes back after a number of failed dials,
// and whose commands fail a number of times first: what a module that waits
// for a host sees while it reboots.
type FlakyHost struct {
	Memory                      // what Remember kept
	FailDials int               // Reconnect fails this many times first
	DialErr   error             // what a failed dial returns; nil: unreachable
	FailRuns  int               // then Run fails this many times
	Files     map[string]string // ReadFile; others do not exist
	// OnlyAt, when set, is the one address the host answers at (a dial's
	// DialOptions.Address; "" is its own): dials elsewhere fail.
	OnlyAt *string

	mu    sync.Mutex
	dials int
	runs  []string
	opts  []transport.DialOptions
	logs  []string
}

var _ modules.Host = (*FlakyHost)(nil)

func (f *FlakyHost) Name() string         { return "ks1" }
func (f *FlakyHost) Reach() modules.Reach { return modules.Reach{Dial: "203.0.113.10"} }

func (f *FlakyHost) Facts() *facts.Facts { return &facts.Facts{} }
func (f *FlakyHost) Log(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}
func (f *FlakyHost) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	return f.Run(ctx, cmd)
}
func (f *FlakyHost) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if s, ok := f.Files[path]; ok {
		return []byte(s), nil
	}
	return nil, fs.ErrNotExist
}
func (f *FlakyHost) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	return fmt.Errorf("flaky host: no uploads")
}
func (f *FlakyHost) RefreshFacts(ctx context.Context) error { return nil }

func (f *FlakyHost) Reconnect(ctx context.Context, opts transport.DialOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opts = append(f.opts, opts)
	return f.dial(opts)
}

// ProbeDial is a dial like Reconnect's, counted with them.
func (f *FlakyHost) ProbeDial(ctx context.Context, opts transport.DialOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dial(opts)
}

func (f *FlakyHost) dial(opts transport.DialOptions) error {
	f.dials++
	if f.OnlyAt != nil && opts.Address != *f.OnlyAt {
		return fmt.Errorf("dial ks1 at %q: no route to host: %w", opts.Address, transport.ErrUnreachable)
	}
	if f.dials <= f.FailDials {
		if f.DialErr != nil {
			return f.DialErr
		}
		return fmt.Errorf("dial ks1: connection refused: %w", transport.ErrUnreachable)
	}
	return nil
}

func (f *FlakyHost) Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = append(f.runs, cmd.Line())
	if len(f.runs) <= f.FailRuns {
		res := transport.Result{ExitCode: 255, Stderr: []byte("not yet")}
		return res, transport.NewExitError(cmd, res)
	}
	return transport.Result{}, nil
}

// Dials is how many times Reconnect and ProbeDial dialed.
func (f *FlakyHost) Dials() int { f.mu.Lock(); defer f.mu.Unlock(); return f.dials }

// DialOptions are the options of every Reconnect, in order.
func (f *FlakyHost) DialOptions() []transport.DialOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]transport.DialOptions(nil), f.opts...)
}

// Ran lists the command lines run or probed, in order.
func (f *FlakyHost) Ran() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.runs...)
}

// Logs lists what was logged.
func (f *FlakyHost) Logs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.logs...)
}
