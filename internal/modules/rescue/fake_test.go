package rescue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/nixbook/nixbook/internal/clock"
	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/boot"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/internal/transport"
)

// system is what a fake server runs in one boot.
type system struct {
	hostname  string
	osRelease string
	hostKey   string
}

var (
	debianOnDisk = system{hostname: "ks1", hostKey: "disk-key", osRelease: "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"}
	ovhRescue    = system{hostname: "rescue12-customer-eu", osRelease: "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"}
)

// server is a modules.Host for a machine that reboots when the emulator's
// reboot task runs: it drops off the network for a number of dials and
// comes back on a new boot, with a new host key when it boots the rescue.
type server struct {
	moduletest.Memory // what Remember kept
	name              string
	vars              map[string]any

	mu          sync.Mutex
	addr        string // the address nixbook dials
	sys         system
	facts       *facts.Facts
	boot        int
	down        bool
	downDials   int  // dials refused after a reboot
	neverBack   bool // the machine never answers again
	knownKey    string
	keyChanges  []string // "old -> new", recorded with NewSystem
	dials       []transport.DialOptions
	refreshes   int
	runs        []string
	logs        []string
	rebootsSeen int
}

var _ modules.Host = (*server)(nil)

func newServer(vars map[string]any) *server {
	s := &server{name: "ks1", addr: "203.0.113.10", vars: vars, sys: debianOnDisk, boot: 1, downDials: 2}
	s.knownKey = s.sys.hostKey
	s.facts = s.currentFacts()
	// No ovh.conf or environment, fast pauses.
	s.API = ovh.Env{
		RetryWait: time.Millisecond,
		Wait: ovh.WaitOptions{FirstPoll: time.Millisecond, Interval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond,
			Tolerate: time.Second, Adopt: 50 * time.Millisecond},
	}
	return s
}

// OVH is the server's read-only view of the API, as the runner makes it
// from its variables.
func (s *server) OVH(endpoint string) (*ovh.Reader, error) { return s.Reader(endpoint, s.vars, s.Log) }

// OVHWriter is OVH's counterpart for Apply.
func (s *server) OVHWriter(endpoint string) (*ovh.Writer, error) {
	return s.Writer(endpoint, s.vars, s.Log)
}

// reboot is what the emulator's OnReboot does to the machine.
func (s *server) reboot(into system) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rebootsSeen++
	s.down = true
	s.boot++
	if into.hostKey == "" {
		into.hostKey = fmt.Sprintf("rescue-key-%d", s.boot)
	}
	s.sys = into
}

func (s *server) bootID() string { return fmt.Sprintf("boot-%d", s.boot) }

func (s *server) currentFacts() *facts.Facts {
	osr := facts.ParseOSRelease(s.sys.osRelease)
	return &facts.Facts{Hostname: s.sys.hostname, OS: osr, BootID: s.bootID(), Rescue: facts.IsRescue(s.sys.hostname, osr)}
}

func (s *server) Name() string         { return s.name }
func (s *server) Reach() modules.Reach { return modules.Reach{Dial: s.addr, Source: "fleet.yml:7"} }
func (s *server) Facts() *facts.Facts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.facts
}

func (s *server) Log(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs = append(s.logs, fmt.Sprintf(format, args...))
}

func (s *server) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	if transport.IsMutating(cmd.Args) {
		return transport.Result{ExitCode: -1}, transport.ErrReadOnly
	}
	return s.Run(ctx, cmd)
}

func (s *server) ReadFile(ctx context.Context, path string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil, fmt.Errorf("read %s: %w: connection lost", path, transport.ErrUnreachable)
	}
	switch path {
	case boot.IDPath:
		return []byte(s.bootID() + "\n"), nil
	case "/etc/hostname":
		return []byte(s.sys.hostname + "\n"), nil
	case "/etc/os-release":
		return []byte(s.sys.osRelease), nil
	}
	return nil, fmt.Errorf("read %s: %w", path, fs.ErrNotExist)
}

func (s *server) Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	s.mu.Lock()
	down := s.down
	s.runs = append(s.runs, cmd.Line())
	s.mu.Unlock()
	if down {
		return transport.Result{ExitCode: -1}, fmt.Errorf("%w: connection lost", transport.ErrUnreachable)
	}
	if len(cmd.Args) == 2 && cmd.Args[0] == "cat" {
		b, err := s.ReadFile(ctx, cmd.Args[1])
		return transport.Result{Stdout: b}, err
	}
	return transport.Result{}, fmt.Errorf("fake server cannot run %s", cmd.Line())
}

func (s *server) Upload(context.Context, string, io.Reader, fs.FileMode) error {
	return errors.New("no uploads")
}

func (s *server) Reconnect(ctx context.Context, opts transport.DialOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dials = append(s.dials, opts)
	if s.neverBack && s.rebootsSeen > 0 {
		return fmt.Errorf("%w: dial tcp 203.0.113.1:22: connect: no route to host", transport.ErrUnreachable)
	}
	if s.down {
		if s.downDials > 0 {
			s.downDials--
			return fmt.Errorf("%w: dial tcp 203.0.113.1:22: connect: connection refused", transport.ErrUnreachable)
		}
		s.down = false
	}
	if s.sys.hostKey != s.knownKey {
		if !opts.NewSystem {
			return &hostkeys.ChangedError{Name: s.name}
		}
		s.keyChanges = append(s.keyChanges, s.knownKey+" -> "+s.sys.hostKey)
		s.knownKey = s.sys.hostKey
	}
	return ctx.Err()
}

func (s *server) RefreshFacts(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return fmt.Errorf("%w: connection lost", transport.ErrUnreachable)
	}
	s.refreshes++
	s.facts = s.currentFacts()
	return nil
}

func (s *server) allLogs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.logs, "\n")
}

// fastClock is a clock whose pauses pass at once (with a real
// millisecond, so that other goroutines move on).
func fastClock() clock.Clock {
	c := moduletest.NewClock()
	c.Yield = time.Millisecond
	return c.Time()
}
