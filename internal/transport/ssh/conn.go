package ssh

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/melbahja/goph"
	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/transport"
)

// cancelGrace is how long a cancelled command gets between SIGTERM and
// SIGKILL.
const cancelGrace = 2 * time.Second

// abortWait bounds how long Close waits for cancelled commands to be
// killed: a signal, a kill session per signal and the grace periods.
func abortWait(timeout time.Duration) time.Duration {
	return 3*cancelGrace + 2*timeout
}

// Conn is one SSH connection to a host. Every Run opens its own session
// on it; uploads share one SFTP client.
type Conn struct {
	name    string
	client  *gossh.Client
	hops    []*gossh.Client
	timeout time.Duration

	closeOnce sync.Once
	closed    chan struct{} // closed by Close
	dead      chan struct{} // closed when the SSH connection has ended
	deadOnce  sync.Once
	deadWhy   error // set before dead is closed

	mu     sync.Mutex // guards sftp and noSFTP
	sftp   *sftp.Client
	noSFTP bool

	// aborting counts cancelled commands still being killed: Close waits
	// for them, as closing the connection first would leave them running
	// (sshd signals nothing when a session without a terminal goes away).
	aborting sync.WaitGroup
}

var _ transport.Conn = (*Conn)(nil)

func newConn(name string, client *gossh.Client, hops []*gossh.Client, opts DialerOptions) *Conn {
	c := &Conn{
		name:    name,
		client:  client,
		hops:    hops,
		timeout: opts.ConnectTimeout,
		closed:  make(chan struct{}),
		dead:    make(chan struct{}),
	}
	go func() {
		err := client.Wait()
		if err == nil {
			err = io.EOF
		}
		c.markDead(fmt.Errorf("connection closed: %w", err))
	}()
	if opts.KeepAlive > 0 {
		go c.keepAlive(opts.KeepAlive, opts.KeepAliveMax)
	}
	return c
}

// Client is the underlying connection, for callers that need more than
// Run and Upload (port forwarding, say).
func (c *Conn) Client() *goph.Client { return &goph.Client{Client: c.client} }

func (c *Conn) markDead(why error) {
	c.deadOnce.Do(func() {
		c.deadWhy = why
		close(c.dead)
	})
}

// keepAlive sends keepalive@openssh.com every interval and closes the
// connection once max of them in a row got no answer, so that a host that
// vanished fails its command instead of hanging it.
func (c *Conn) keepAlive(interval time.Duration, max int) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	answered := make(chan error, 1)
	pending, missed := false, 0
	for {
		select {
		case <-c.dead:
			return
		case err := <-answered:
			pending = false
			missed = 0
			if err != nil {
				c.markDead(fmt.Errorf("keepalive: %w", err))
				c.client.Close()
				return
			}
			continue
		case <-ticker.C:
		}
		if pending {
			missed++
			if missed >= max {
				c.markDead(fmt.Errorf("no answer to %d keepalives in %s", missed, time.Duration(missed)*interval))
				c.client.Close()
				return
			}
			continue
		}
		pending = true
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
	}
}

// alive checks that the connection still answers, after something failed.
func (c *Conn) alive() bool {
	select {
	case <-c.dead:
		return false
	default:
	}
	answered := make(chan error, 1)
	go func() {
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		answered <- err
	}()
	select {
	case err := <-answered:
		if err != nil {
			c.markDead(fmt.Errorf("keepalive: %w", err))
			c.client.Close()
		}
		return err == nil
	case <-c.dead:
		return false
	case <-time.After(c.timeout):
		c.markDead(fmt.Errorf("no answer to a keepalive in %s", c.timeout))
		c.client.Close()
		return false
	}
}

// failure turns err into an unreachable error when the connection is gone.
func (c *Conn) failure(what string, err error) error {
	select {
	case <-c.closed:
		return fmt.Errorf("%s on %s: %w", what, c.name, net.ErrClosed)
	default:
	}
	if c.alive() {
		return fmt.Errorf("%s on %s: %w", what, c.name, err)
	}
	<-c.dead
	return fmt.Errorf("%s on %s: %w: %w", what, c.name, transport.ErrUnreachable, c.deadWhy)
}

// pidMarker starts the line every command first writes to stderr: the
// remote shell's pid, which is also its process group (sshd puts each
// session in a new one). OpenSSH ignores signal requests for root logins, so
// a cancelled command is killed through that group from a second session.
const pidMarker = "nixbook-pid "

// Run runs cmd.Line() in a new session. Output streams to cmd.Stdout and
// cmd.Stderr as it arrives and is kept in the Result; nothing reaches them
// after Run returns. Cancelling ctx returns at once and kills the remote
// process group (TERM, then KILL). A Read on cmd.Stdin that blocks may
// still be pending when Run returns.
func (c *Conn) Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	line := cmd.Line()
	fail := transport.Result{ExitCode: -1}
	if err := ctx.Err(); err != nil {
		return fail, fmt.Errorf("run %s: %w", line, err)
	}
	select {
	case <-c.dead:
		return fail, c.failure("run "+line, net.ErrClosed)
	default:
	}
	// Opening a session and starting the command wait for the server: on a
	// wedged connection only the context may end them, and on one that has
	// ended (x/crypto/ssh may leave a channel open request unanswered when
	// the connection closes under it) its death does.
	started := make(chan startedSession, 1)
	go func() { started <- c.start(line) }()
	var ss startedSession
	select {
	case ss = <-started:
	case <-ctx.Done():
		c.abortStart(started)
		return fail, fmt.Errorf("run %s: %w", line, ctx.Err())
	case <-c.dead:
		go func() {
			if ss := <-started; ss.err == nil {
				ss.sess.Close()
			}
		}()
		return fail, c.failure("run "+line, net.ErrClosed)
	}
	if ss.err != nil {
		return fail, ss.err
	}
	stdout := &gatedWriter{live: cmd.Stdout, buf: transport.NewCapture(cmd.Keep, cmd.KeepNote)}
	stderr := &gatedWriter{live: cmd.Stderr, buf: transport.NewCapture(cmd.Keep, cmd.KeepNote)}
	r := c.attach(ss, cmd.Stdin, stdout, stderr)

	var err error
	select {
	case err = <-r.finished:
		r.sess.Close()
	case <-ctx.Done():
		// Nothing may reach the caller's writers once Run has returned.
		res := transport.Result{ExitCode: -1, Stdout: stdout.close(), Stderr: stderr.close()}
		c.aborting.Go(func() { c.abort(r) })
		return res, fmt.Errorf("run %s: %w", line, ctx.Err())
	}

	res := transport.Result{Stdout: stdout.close(), Stderr: stderr.close()}
	var exit *gossh.ExitError
	var missing *gossh.ExitMissingError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitStatus()
		return res, transport.NewExitError(cmd, res)
	case errors.As(err, &missing):
		res.ExitCode = -1
		return res, c.failure("run "+line, errors.New("command ended without an exit status"))
	default:
		res.ExitCode = -1
		return res, c.failure("run "+line, err)
	}
}

type startedSession struct {
	sess           *gossh.Session
	stdin          io.WriteCloser
	stdout, stderr io.Reader
	err            error
}

func (c *Conn) start(line string) startedSession {
	sess, err := c.client.NewSession()
	if err != nil {
		return startedSession{err: c.failure("opening session", err)}
	}
	ss := startedSession{sess: sess}
	var err1, err2, err3 error
	ss.stdin, err1 = sess.StdinPipe()
	ss.stdout, err2 = sess.StdoutPipe()
	ss.stderr, err3 = sess.StderrPipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		sess.Close()
		return startedSession{err: fmt.Errorf("run %s: %w", line, err)}
	}
	if err := sess.Start("echo " + pidMarker + "$$ >&2; " + line); err != nil {
		sess.Close()
		return startedSession{err: c.failure("starting "+line, err)}
	}
	return ss
}

// abortStart stops, in the background, a command whose start Run stopped
// waiting for, should it start after all.
func (c *Conn) abortStart(started <-chan startedSession) {
	c.aborting.Go(func() {
		if ss := <-started; ss.err == nil {
			r := c.attach(ss, nil, &gatedWriter{closed: true, buf: transport.NewCapture(0, "")}, &gatedWriter{closed: true, buf: transport.NewCapture(0, "")})
			c.abort(r)
		}
	})
}

// running is a started command with its streams being copied.
type running struct {
	sess     *gossh.Session
	pgid     chan int   // the remote process group, or 0 when unknown
	finished chan error // the result of Wait, once all output is copied
}

func (c *Conn) attach(ss startedSession, stdin io.Reader, stdout, stderr io.Writer) running {
	r := running{sess: ss.sess, pgid: make(chan int, 1), finished: make(chan error, 1)}
	var copies sync.WaitGroup
	copies.Go(func() { _, _ = io.Copy(stdout, ss.stdout) })
	copies.Go(func() { copyStderr(stderr, ss.stderr, r.pgid) })
	go func() {
		if stdin != nil {
			_, _ = io.Copy(ss.stdin, stdin)
		}
		ss.stdin.Close() // EOF, so commands reading stdin end
	}()
	go func() {
		err := ss.sess.Wait()
		copies.Wait()
		r.finished <- err
	}()
	return r
}

// copyStderr copies r to w except the pid line, whose number goes to pgid.
// Lines a login script may print first are passed on.
func copyStderr(w io.Writer, r io.Reader, pgid chan<- int) {
	br := bufio.NewReader(r)
	found := 0
	for range 64 {
		l, err := br.ReadString('\n')
		if rest, ok := strings.CutPrefix(l, pidMarker); ok && strings.HasSuffix(rest, "\n") {
			if n, perr := strconv.Atoi(strings.TrimSpace(rest)); perr == nil && n > 1 {
				found = n
				break
			}
		}
		_, _ = io.WriteString(w, l)
		if err != nil {
			break
		}
	}
	pgid <- found
	_, _ = io.Copy(w, br)
}

// abort ends a command whose caller gave up: a signal request (honoured for
// non-root logins), then kill on its process group, TERM and after a grace
// period KILL.
func (c *Conn) abort(r running) {
	defer r.sess.Close()
	_ = r.sess.Signal(gossh.SIGTERM)
	var pgid int
	select {
	case pgid = <-r.pgid:
	case <-r.finished:
		return
	case <-time.After(cancelGrace):
	}
	finished := false
	for _, sig := range []gossh.Signal{gossh.SIGTERM, gossh.SIGKILL} {
		if sig == gossh.SIGKILL {
			_ = r.sess.Signal(sig)
		}
		if pgid > 0 {
			_ = c.signalGroup(pgid, string(sig))
		}
		deadline := time.After(cancelGrace)
		if !finished {
			select {
			case <-r.finished:
				finished = true
			case <-deadline:
				continue
			}
		}
		// The session ends with its shell; the rest of the group may still
		// be dying (or ignore TERM): it is gone only when kill -0 says so.
		if pgid == 0 || c.groupGone(pgid, deadline) {
			return
		}
	}
}

// groupAlive reports whether the remote process group pgid has a process
// that is not a zombie: ps where there is one, else kill -0.
func (c *Conn) groupAlive(pgid int) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	res, err := c.Run(ctx, transport.Cmd{Args: []string{"ps", "-e", "-o", "pgid=,stat="}})
	var exit *transport.ExitError
	if errors.As(err, &exit) {
		err = c.signalGroup(pgid, "0")
		if errors.As(err, &exit) {
			return false, nil // no such process group
		}
		return err == nil, err
	}
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == strconv.Itoa(pgid) && !strings.HasPrefix(f[1], "Z") {
			return true, nil
		}
	}
	return false, nil
}

// signalGroup sends sig to the remote process group pgid ("0" probes it).
func (c *Conn) signalGroup(pgid int, sig string) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	_, err := c.Run(ctx, transport.Cmd{Args: []string{"kill", "-s", sig, "--", "-" + strconv.Itoa(pgid)}})
	return err
}

// groupGone waits until the remote process group pgid has no live process
// left (zombies waiting for a reaper do not count), or deadline; it reports
// whether it is gone.
func (c *Conn) groupGone(pgid int, deadline <-chan time.Time) bool {
	for {
		alive, err := c.groupAlive(pgid)
		if err != nil {
			return false // the connection is gone: nothing more to learn
		}
		if !alive {
			return true
		}
		select {
		case <-deadline:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// gatedWriter keeps everything written and copies it to live until closed;
// after that, writes are dropped.
type gatedWriter struct {
	mu     sync.Mutex
	buf    *transport.Capture
	live   io.Writer
	closed bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil
	}
	g.buf.Write(p)
	if g.live != nil {
		_, _ = g.live.Write(p) // a failing observer must not fail the command
	}
	return len(p), nil
}

func (g *gatedWriter) close() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	return g.buf.Bytes()
}

var errNoSFTP = errors.New("no sftp subsystem")

// Upload writes src to a temporary file beside dst, sets mode, then renames
// it over dst, so readers see the old file or the new one. It uses SFTP,
// or a shell pipeline when the server has no SFTP subsystem. Cancelling ctx
// returns at once and removes the temporary file; a Read on src that blocks
// may still be pending.
func (c *Conn) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("upload %s: %w", dst, err)
	}
	sc, err := c.sftpClient()
	if errors.Is(err, errNoSFTP) {
		return c.uploadViaShell(ctx, dst, src, mode)
	}
	if err != nil {
		return c.failure("upload "+dst, err)
	}
	// SFTP calls take no context: closing the client is what stops them.
	stop := context.AfterFunc(ctx, func() { sc.Close() })
	tmp := tempPath(dst)
	// A Read on src may block for good; it must not hold the caller.
	result := make(chan error, 1)
	go func() { result <- c.uploadSFTP(ctx, sc, tmp, dst, src, mode) }()
	select {
	case err = <-result:
	case <-ctx.Done():
		err = ctx.Err()
		go func() {
			// The closed client fails every call but a blocked Read on src;
			// a short wait lets an open in flight land before the removal.
			select {
			case <-result:
			case <-time.After(time.Second):
			}
			c.removeQuietly(tmp)
		}()
	}
	if !stop() {
		c.dropSFTP(sc) // closed by the cancel; the next upload opens another
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("upload %s: %w", dst, ctx.Err())
	default:
		return c.failure("upload "+dst, err)
	}
}

// removeQuietly deletes what a cancelled upload left behind, if it can.
func (c *Conn) removeQuietly(path string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	_, _ = c.Run(ctx, transport.Cmd{Args: []string{"rm", "-f", "--", path}})
}

func (c *Conn) sftpClient() (*sftp.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	if c.noSFTP {
		return nil, errNoSFTP
	}
	sc, err := c.Client().NewSftp()
	if err != nil {
		if strings.Contains(err.Error(), "subsystem request failed") {
			c.noSFTP = true
			return nil, errNoSFTP
		}
		return nil, fmt.Errorf("starting sftp: %w", err)
	}
	c.sftp = sc
	return sc, nil
}

func (c *Conn) dropSFTP(sc *sftp.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sftp == sc {
		c.sftp = nil
	}
	sc.Close()
}

func (c *Conn) uploadSFTP(ctx context.Context, sc *sftp.Client, tmp, dst string, src io.Reader, mode fs.FileMode) (err error) {
	f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			_ = sc.Remove(tmp)
		}
	}()
	// Before any data: the umask must not widen nor narrow the mode.
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.ReadFromWithConcurrency(ctxReader{ctx, src}, 0); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if _, ok := sc.HasExtension("posix-rename@openssh.com"); ok {
		return sc.PosixRename(tmp, dst)
	}
	// Plain SFTP rename refuses to replace an existing file.
	if err := sc.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return sc.Rename(tmp, dst)
}

// uploadViaShell streams src into cat; the paths and mode travel as
// arguments, never inside the script.
func (c *Conn) uploadViaShell(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	const script = `umask 077; trap 'rm -f "$1"; exit 143' HUP INT TERM; ` +
		`if cat > "$1" && chmod "$2" "$1" && mv -f "$1" "$3"; then exit 0; fi; rm -f "$1"; exit 1`
	cmd := transport.Cmd{
		Args:  []string{"sh", "-c", script, "sh", tempPath(dst), strconv.FormatUint(uint64(transport.ChmodMode(mode)), 8), dst},
		Stdin: src,
	}
	if _, err := c.Run(ctx, cmd); err != nil {
		return fmt.Errorf("upload %s: %w", dst, err)
	}
	return nil
}

func tempPath(dst string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return path.Join(path.Dir(dst), "."+path.Base(dst)+".nixbook-"+hex.EncodeToString(b))
}

// Close closes the SFTP client, the connection and the jump connections,
// once the cancelled commands have been killed (bounded by abortWait).
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		killed := make(chan struct{})
		go func() { c.aborting.Wait(); close(killed) }()
		select {
		case <-killed:
		case <-c.dead:
		case <-time.After(abortWait(c.timeout)):
		}
		close(c.closed)
		c.mu.Lock()
		if c.sftp != nil {
			c.sftp.Close()
			c.sftp = nil
		}
		c.mu.Unlock()
		err = c.client.Close()
		for i := len(c.hops) - 1; i >= 0; i-- {
			c.hops[i].Close()
		}
		c.markDead(fmt.Errorf("connection closed: %w", net.ErrClosed))
	})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

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
