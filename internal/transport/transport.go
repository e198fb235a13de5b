// Package transport defines how nixbook talks to a host: argv commands quoted
// by the transport, uploads, and the read-only gate that backs up dry runs.
package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/nixbook/nixbook/internal/shellquote"
)

// Cmd is one command to run on a host. Args is an argv: the transport quotes
// every element, so user values are never glued into a shell string.
type Cmd struct {
	Args   []string
	Dir    string            // working directory; empty for the login directory
	Env    map[string]string // set through the command line, not the SSH env request
	Stdin  io.Reader
	Stdout io.Writer // optional live copy of stdout; Result.Stdout holds it all too
	Stderr io.Writer // optional live copy of stderr
	// Keep bounds the bytes of each stream Result keeps (0: all of it):
	// the first and last halves, with a line saying how much was dropped
	// and KeepNote (where the whole output went, say).
	Keep     int
	KeepNote string
}

// String is the command as the remote shell receives it.
func (c Cmd) String() string { return c.Line() }

// Line renders the command as one POSIX shell line with every value quoted.
func (c Cmd) Line() string {
	var b strings.Builder
	if c.Dir != "" {
		b.WriteString("cd ")
		b.WriteString(shellquote.Quote(c.Dir))
		b.WriteString(" && ")
	}
	if len(c.Env) > 0 {
		b.WriteString("env")
		for _, k := range sortedKeys(c.Env) {
			b.WriteString(" ")
			b.WriteString(shellquote.Quote(k + "=" + c.Env[k]))
		}
		b.WriteString(" ")
	}
	b.WriteString(shellquote.Join(c.Args))
	return b.String()
}

// Result is what a finished command left behind.
type Result struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
}

// ExitError reports a command that ran and exited non-zero.
type ExitError struct {
	Cmd      string
	ExitCode int
	Stderr   string // last lines, for messages
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("command exited %d: %s", e.ExitCode, e.Cmd)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + lastLines(s, 3)
	}
	return msg
}

// NewExitError builds an ExitError for cmd from its result.
func NewExitError(cmd Cmd, res Result) *ExitError {
	return &ExitError{Cmd: cmd.Line(), ExitCode: res.ExitCode, Stderr: string(res.Stderr)}
}

// ErrReadOnly is returned by a read-only connection for anything that could
// change the host.
var ErrReadOnly = errors.New("refused: connection is read-only (dry run)")

// ErrUnreachable marks errors that mean the host could not be reached at all,
// as opposed to a command that failed on it.
var ErrUnreachable = errors.New("unreachable")

// Conn is an open connection to one host, used by one goroutine at a time.
type Conn interface {
	// Run runs cmd to completion. A non-zero exit is returned as *ExitError
	// together with the Result.
	Run(ctx context.Context, cmd Cmd) (Result, error)
	// Upload writes src to dst on the host atomically with the given mode.
	Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error
	Close() error
}

// Target says where and as whom to connect.
type Target struct {
	Name     string   // inventory name; known_hosts entries are keyed by it
	Address  string   // host name or IP to dial; defaults to Name
	Port     int      // 0: from ~/.ssh/config, else 22
	User     string   // empty: from ~/.ssh/config, else root
	KeyFiles []string // private keys to offer besides the agent
}

// DialOptions change how one dial treats the host.
type DialOptions struct {
	// NewSystem says the host has just booted a new system (rescue, kexec,
	// reinstall), so a changed host key replaces the recorded one.
	NewSystem bool
	// Log receives a line per noteworthy event (new key recorded, key replaced).
	Log func(string)
	// Address, when set, is dialed instead of the target's address for this
	// connection: the host at another of its addresses (its IPv6 address,
	// say). Everything else is the target's: its ~/.ssh/config block (Port,
	// User, keys, ProxyJump), found by its own address, and its host keys.
	Address string
}

// Dialer opens connections.
type Dialer interface {
	Dial(ctx context.Context, t Target, opts DialOptions) (Conn, error)
}

// HostResolver is a Dialer that can say which host name or address it dials
// for t (after ~/.ssh/config's HostName, say), without dialing.
type HostResolver interface {
	DialHost(t Target) (string, error)
}

// DialHost is the host name or address d dials for t: d's answer when it
// knows, else t's Address, else its Name.
func DialHost(d Dialer, t Target) (string, error) {
	if r, ok := d.(HostResolver); ok {
		return r.DialHost(t)
	}
	if t.Address != "" {
		return t.Address, nil
	}
	return t.Name, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// ChmodMode is mode as chmod(1) and chmod(2) read it: the permission bits
// with setuid, setgid and sticky, which Go keeps apart.
func ChmodMode(mode fs.FileMode) uint32 {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}
