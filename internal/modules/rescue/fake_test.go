package rescue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nixbook/nixbook/internal/clock"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/internal/transport"
)

var (
	debianOnDisk = system{Hostname: "ks1", HostKey: "disk-key", OSRelease: "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"}
	ovhRescue    = system{Hostname: "rescue12-customer-eu", OSRelease: "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"}
)

type system = moduletest.System

// server is a modules.Host for a machine that reboots when the emulator's
// reboot task runs (moduletest.Machine), with the API views the runner
// would make from its variables. It runs nothing but cat.
type server struct {
	*moduletest.Machine

	mu   sync.Mutex
	runs []string
}

var _ modules.Host = (*server)(nil)

func newServer(vars map[string]any) *server {
	s := &server{Machine: moduletest.NewMachine(debianOnDisk)}
	s.APIVars = vars
	// No ovh.conf or environment, fast pauses.
	s.API = ovh.Env{
		RetryWait: time.Millisecond,
		Wait: ovh.WaitOptions{FirstPoll: time.Millisecond, Interval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond,
			Tolerate: time.Second, Adopt: 50 * time.Millisecond},
	}
	return s
}

func (s *server) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	if transport.IsMutating(cmd.Args) {
		return transport.Result{ExitCode: -1}, transport.ErrReadOnly
	}
	return s.Run(ctx, cmd)
}

func (s *server) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if err := s.Up(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if data, ok := s.SystemFile(path); ok {
		return data, nil
	}
	return nil, fmt.Errorf("read %s: %w", path, fs.ErrNotExist)
}

func (s *server) Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	s.mu.Lock()
	s.runs = append(s.runs, cmd.Line())
	s.mu.Unlock()
	if err := s.Up(); err != nil {
		return transport.Result{ExitCode: -1}, err
	}
	if len(cmd.Args) == 2 && cmd.Args[0] == "cat" {
		b, err := s.ReadFile(ctx, cmd.Args[1])
		return transport.Result{Stdout: b}, err
	}
	if cmd.Line() == systemCmd().Line() {
		return s.head(cmd)
	}
	return transport.Result{}, fmt.Errorf("fake server cannot run %s", cmd.Line())
}

// head prints the files after -- as head -v does; a missing one makes it
// exit 1 after the others.
func (s *server) head(cmd transport.Cmd) (transport.Result, error) {
	var out, errs strings.Builder
	for _, p := range cmd.Args[slices.Index(cmd.Args, "--")+1:] {
		data, ok := s.SystemFile(p)
		if !ok {
			fmt.Fprintf(&errs, "head: cannot open '%s' for reading: No such file or directory\n", p)
			continue
		}
		if out.Len() > 0 {
			out.WriteString("\n") // GNU head's line between files
		}
		fmt.Fprintf(&out, "==> %s <==\n%s", p, data)
	}
	res := transport.Result{Stdout: []byte(out.String()), Stderr: []byte(errs.String())}
	if errs.Len() > 0 {
		res.ExitCode = 1
		return res, transport.NewExitError(cmd, res)
	}
	return res, nil
}

func (s *server) Upload(context.Context, string, io.Reader, fs.FileMode) error {
	return errors.New("no uploads")
}

// fastClock is a clock whose pauses pass at once (with a real
// millisecond, so that other goroutines move on).
func fastClock() clock.Clock {
	c := moduletest.NewClock()
	c.Yield = time.Millisecond
	return c.Time()
}
