// Package local is a transport that runs commands on this machine. Commands
// go through `sh -c` with the same quoted line a remote shell would receive,
// so tests that use it exercise the quoting the SSH transport relies on.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nixbook/nixbook/internal/transport"
)

// Conn runs commands on this machine. The zero value is ready to use.
type Conn struct {
	// WaitDelay bounds how long Run waits for output pipes held open by
	// background children after the command itself ended; 0 means 2s.
	WaitDelay time.Duration
}

var _ transport.Conn = (*Conn)(nil)

// Run runs `sh -c cmd.Line()` in its own process group; cancelling ctx kills
// the whole group.
func (c *Conn) Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	line := cmd.Line()
	stdout, stderr := transport.NewCapture(cmd.Keep, cmd.KeepNote), transport.NewCapture(cmd.Keep, cmd.KeepNote)
	p := exec.CommandContext(ctx, "sh", "-c", line)
	p.Stdin = cmd.Stdin
	p.Stdout = tee(stdout, cmd.Stdout)
	p.Stderr = tee(stderr, cmd.Stderr)
	p.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.Cancel = func() error { return syscall.Kill(-p.Process.Pid, syscall.SIGKILL) }
	p.WaitDelay = c.WaitDelay
	if p.WaitDelay == 0 {
		p.WaitDelay = 2 * time.Second
	}
	err := p.Run()
	res := transport.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if ctx.Err() != nil {
		res.ExitCode = -1
		return res, fmt.Errorf("run %s: %w", line, ctx.Err())
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.ExitCode = exitCode(exit)
		return res, transport.NewExitError(cmd, res)
	case errors.Is(err, exec.ErrWaitDelay):
		// The command finished; a background child kept its output open.
		return res, nil
	case err != nil:
		res.ExitCode = -1
		return res, fmt.Errorf("run %s: %w", line, err)
	}
	return res, nil
}

// exitCode reports a death by signal as a shell would: 128 + signal.
func exitCode(e *exec.ExitError) int {
	if ws, ok := e.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return e.ExitCode()
}

func tee(buf *transport.Capture, w io.Writer) io.Writer {
	if w == nil {
		return buf
	}
	return io.MultiWriter(buf, w)
}

// Upload writes src to a temporary file beside dst and renames it into place,
// so readers see the old file or the new one, never half of it.
func (c *Conn) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("upload %s: %w", dst, err)
	}
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".nixbook-*")
	if err != nil {
		return fmt.Errorf("upload %s: %w", dst, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := io.Copy(f, ctxReader{ctx, src}); err != nil {
		return fmt.Errorf("upload %s: %w", dst, err)
	}
	// Chmod after creation: the umask must not narrow the requested mode.
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("upload %s: %w", dst, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("upload %s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("upload %s: %w", dst, err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("upload %s: %w", dst, err)
	}
	return nil
}

// Close does nothing: there is no connection to drop.
func (c *Conn) Close() error { return nil }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Dialer hands out local connections whatever the target, for
// `connection: local` and tests.
type Dialer struct{}

var _ transport.Dialer = Dialer{}

// Dial returns a new local connection.
func (Dialer) Dial(ctx context.Context, t transport.Target, opts transport.DialOptions) (transport.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &Conn{}, nil
}
