package waitssh

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/nixbook/nixbook/facts"
	"github.com/nixbook/nixbook/modules"
	"github.com/nixbook/nixbook/modules/moduletest"
	"github.com/nixbook/nixbook/transport"
)

// fakeHost is a host whose SSH comes back after a number of failed dials.
type fakeHost struct {
	moduletest.Memory       // what Remember kept
	failDials         int   // Reconnect fails this many times first
	dialErr           error // what a failed dial returns; nil: unreachable
	failRuns          int   // then Run fails this many times
	dials             int
	runs              []string
	opts              []transport.DialOptions
	logs              []string
}

var _ modules.Host = (*fakeHost)(nil)

func (f *fakeHost) Name() string         { return "ks1" }
func (f *fakeHost) Reach() modules.Reach { return modules.Reach{Dial: "203.0.113.10"} }
func (f *fakeHost) Vars() map[string]any { return nil }
func (f *fakeHost) Facts() *facts.Facts  { return &facts.Facts{} }
func (f *fakeHost) Log(format string, args ...any) {
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}
func (f *fakeHost) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	return f.Run(ctx, cmd)
}
func (f *fakeHost) ReadFile(ctx context.Context, path string) ([]byte, error) {
	return nil, fs.ErrNotExist
}
func (f *fakeHost) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	return fmt.Errorf("fake host: no uploads")
}
func (f *fakeHost) RefreshFacts(ctx context.Context) error { return nil }

func (f *fakeHost) Reconnect(ctx context.Context, opts transport.DialOptions) error {
	f.dials++
	f.opts = append(f.opts, opts)
	if f.dials <= f.failDials {
		if f.dialErr != nil {
			return f.dialErr
		}
		return fmt.Errorf("dial ks1: connection refused: %w", transport.ErrUnreachable)
	}
	return nil
}

func (f *fakeHost) Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	f.runs = append(f.runs, cmd.Line())
	if len(f.runs) <= f.failRuns {
		res := transport.Result{ExitCode: 255, Stderr: []byte("not yet")}
		return res, transport.NewExitError(cmd, res)
	}
	return transport.Result{}, nil
}

// fakeClock moves only when slept on, and records the pauses.
type fakeClock struct {
	t      time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Clock() Clock {
	return Clock{
		NowFn: func() time.Time { return c.t },
		SleepFn: func(ctx context.Context, d time.Duration) error {
			c.sleeps = append(c.sleeps, d)
			c.t = c.t.Add(d)
			return ctx.Err()
		},
	}
}

func durations(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.String())
	}
	return strings.Join(s, " ")
}
