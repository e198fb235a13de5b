package ssh

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// commandConn is a connection through a local ProxyCommand: its stdin and
// stdout carry the SSH stream. Closing it ends the command and everything
// it started.
type commandConn struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr *tailBuffer

	closeOnce sync.Once
	done      chan struct{}
}

// dialCommand starts a ProxyCommand as OpenSSH does, through the user's
// shell with exec.
func dialCommand(ctx context.Context, command string) (*commandConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	shell := os.Getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	cmd := exec.Command(shell, "-c", "exec "+command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c := &commandConn{cmd: cmd, stderr: &tailBuffer{max: 2048}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	// Plain pipes, not StdinPipe and StdoutPipe: Wait would close those
	// under a reader still draining what the command wrote.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("ProxyCommand: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("ProxyCommand: %w", err)
	}
	cmd.Stdin, cmd.Stdout = inR, outW
	c.stdin, c.stdout = inW, outR
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("ProxyCommand %q: %w", command, err)
	}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *commandConn) Read(p []byte) (int, error) {
	n, err := c.stdout.Read(p)
	return n, c.ended(err)
}

// Write fails with a broken pipe when the command has exited: the
// handshake's first write, as often as its first read, is what finds out.
func (c *commandConn) Write(p []byte) (int, error) {
	n, err := c.stdin.Write(p)
	return n, c.ended(err)
}

// ended adds to a failed read or write what the command said on stderr,
// which tells why (no route, unknown host, a refused jump), once it has
// said it.
func (c *commandConn) ended(err error) error {
	if err == nil {
		return nil
	}
	select {
	case <-c.done: // its stderr is complete
	case <-time.After(100 * time.Millisecond):
	}
	if msg := c.Stderr(); msg != "" {
		return fmt.Errorf("ProxyCommand ended: %s: %w", msg, err)
	}
	return err
}

// Close closes the command's stdin and hangs it up, as ssh does, then
// kills its process group if it has not ended within a second.
func (c *commandConn) Close() error {
	c.closeOnce.Do(func() {
		c.stdin.Close()
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGHUP)
		select {
		case <-c.done:
		case <-time.After(time.Second):
		}
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
		c.stdout.Close()
	})
	return nil
}

// Stderr is the end of what the command wrote to its stderr.
func (c *commandConn) Stderr() string { return strings.TrimSpace(c.stderr.String()) }

func (c *commandConn) LocalAddr() net.Addr                { return commandAddr{} }
func (c *commandConn) RemoteAddr() net.Addr               { return commandAddr{} }
func (c *commandConn) SetDeadline(t time.Time) error      { return nil }
func (c *commandConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *commandConn) SetWriteDeadline(t time.Time) error { return nil }

type commandAddr struct{}

func (commandAddr) Network() string { return "proxycommand" }
func (commandAddr) String() string  { return "proxycommand" }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
