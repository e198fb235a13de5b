package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"strings"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/transport"
	"github.com/nixbook/nixbook/internal/transport/local"
)

// hostRun is one host's state for the whole run: its single connection, its
// facts, its registered results and its log. Only the host's own pipeline
// goroutine touches it.
type hostRun struct {
	inv   *inventory.Host
	r     *run
	conn  transport.Conn
	facts *facts.Facts
	// factsStale says the connection the facts were gathered over has been
	// closed since: the host may run another boot now. The next task gets
	// them dropped, or gathered again (see run.freshFacts).
	factsStale bool
	vars       map[string]any // registered results and set facts
	log        *hostLog
	redact     *redactor
	recap      HostRecap
	down       bool // unreachable: nothing more is tried on this host
	notified   map[string]bool
	task       string // the task running now, for output events
	noLog      bool   // the running task hides its output
	registers  bool   // the running task registers its result
	// unplanned are the commands the running task's Apply ran (or, under
	// Strict, tried) that its plan did not list, as shown.
	unplanned []string
	// disksAtStart is each disk's by-id link by kernel path when the run
	// first gathered facts (facts.Facts.DisksAtStart).
	disksAtStart map[string]string
	// wouldChange is the first task a dry run found would change the host:
	// after it, what a later task inspects may not exist yet.
	wouldChange string
	// rescuing counts the enclosing blocks with a rescue: a task failing
	// there is rescued, not failed.
	rescuing int
	// failedTask and failedResult are the last task that failed and its
	// result, for a rescue's ansible_failed_task and ansible_failed_result.
	failedTask   *playbooks.Task
	failedResult map[string]any
	// lastMsg and lastOut are the last task's message (as shown) and
	// result, for a run_once task's other hosts.
	lastMsg string
	lastOut map[string]any

	plays     int32        // plays the host is in
	playsDone atomic.Int32 // plays it went through before any interrupt
}

func (h *hostRun) target() transport.Target {
	return transport.Target{
		Name:     h.inv.Name,
		Address:  h.inv.Address,
		Port:     h.inv.Port,
		User:     h.inv.User,
		KeyFiles: h.inv.KeyFiles,
	}
}

// reach is where the host is dialed. A ~/.ssh/config the dialer cannot
// read leaves the inventory's address, which the dial itself then refuses.
func (h *hostRun) reach() modules.Reach {
	t := h.target()
	dial, err := transport.DialHost(h.r.Dialer, t)
	if err != nil {
		dial = t.Address
	}
	return modules.Reach{Dial: dial, Source: h.inv.Source}
}

// connect dials the host once; the connection is kept for the whole run.
func (h *hostRun) connect(ctx context.Context, opts transport.DialOptions) error {
	if h.conn != nil {
		return nil
	}
	conn, err := h.dial(ctx, opts)
	if err != nil {
		return err
	}
	h.conn = conn
	return nil
}

// dial opens a connection to the host, logging how it went.
func (h *hostRun) dial(ctx context.Context, opts transport.DialOptions) (transport.Conn, error) {
	opts.Log = func(msg string) {
		h.log.Printf("%s", msg)
		h.r.emit(Event{Type: EventNotice, Host: h.inv.Name, Msg: msg})
	}
	start := time.Now()
	t := h.target()
	if opts.Address != "" {
		// The target stays the inventory's: the dialer finds the host's ssh
		// config by it and dials opts.Address in the end.
		h.log.Printf("dialing %s at %s", t.Name, opts.Address)
	}
	conn, err := h.r.Dialer.Dial(ctx, t, opts)
	if err != nil {
		h.log.Printf("connect failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
		return nil, err
	}
	h.log.Printf("connected in %s", time.Since(start).Round(time.Millisecond))
	return conn, nil
}

func (h *hostRun) close() {
	if h.conn != nil {
		h.conn.Close()
		h.conn = nil
		h.factsStale = h.facts != nil
	}
}

// dropStaleFacts forgets facts gathered over a connection that was closed
// since: whatever dialed again may have found another boot.
func (h *hostRun) dropStaleFacts() {
	if !h.factsStale {
		return
	}
	h.log.Printf("facts of boot %s dropped: the connection they were gathered over was closed since", h.facts.BootID)
	h.facts, h.factsStale = nil, false
}

// run runs cmd on the connection, logging the command, its output as it
// arrives, its exit code and duration.
func (h *hostRun) run(ctx context.Context, conn transport.Conn, cmd transport.Cmd, kind string) (transport.Result, error) {
	if conn == nil {
		return transport.Result{}, fmt.Errorf("%w: not connected", transport.ErrUnreachable)
	}
	if kind == "run" && cmd.Keep == 0 {
		// What modules read back (probes, files, facts) is kept whole.
		cmd.Keep, cmd.KeepNote = h.keep(), h.keepNote()
	}
	line := h.redact.String(cmd.Line())
	if h.noLog {
		line = "(command hidden by no_log)"
	}
	h.log.Printf("%s: %s", kind, line)
	out := &lineWriter{emit: func(s string) { h.output("out", s) }}
	errw := &lineWriter{emit: func(s string) { h.output("err", s) }}
	cmd.Stdout = teeWriter(cmd.Stdout, out)
	cmd.Stderr = teeWriter(cmd.Stderr, errw)
	start := time.Now()
	res, err := conn.Run(ctx, cmd)
	out.Flush()
	errw.Flush()
	h.log.Printf("exit %d in %s", res.ExitCode, time.Since(start).Round(time.Millisecond))
	if err != nil {
		var exit *transport.ExitError
		if !errors.As(err, &exit) && !h.noLog {
			h.log.Printf("error: %s", h.redact.String(err.Error()))
		}
	}
	return res, err
}

func (h *hostRun) output(stream, line string) {
	if h.noLog {
		return
	}
	line = h.redact.String(line)
	h.log.Printf("  %s| %s", stream, line)
	h.r.emit(Event{Type: EventOutput, Host: h.inv.Name, Task: h.task, Line: line})
}

func teeWriter(a io.Writer, b io.Writer) io.Writer {
	if a == nil {
		return b
	}
	return io.MultiWriter(a, b)
}

// gatherFacts runs the facts script in one round trip. It is the runner's
// own read, so it goes over the plain connection even in a dry run.
func (h *hostRun) gatherFacts(ctx context.Context) error {
	f, err := facts.Gather(ctx, func(ctx context.Context, argv []string) ([]byte, error) {
		res, err := h.run(ctx, h.conn, transport.Cmd{Args: argv}, "facts")
		return res.Stdout, err
	})
	if err != nil {
		return fmt.Errorf("gather facts: %w", err)
	}
	if h.disksAtStart == nil {
		h.disksAtStart = f.StableDisks()
	} else if now := f.StableDisks(); !maps.Equal(now, h.disksAtStart) {
		h.log.Printf("the disks are named otherwise than at the start of the run: %v, then %v", now, h.disksAtStart)
	}
	f.DisksAtStart = h.disksAtStart
	h.facts, h.factsStale = f, false
	return nil
}

// readOnlyHost is what Check sees: probes only, over a connection that
// refuses mutating programs as a backstop.
type readOnlyHost struct {
	h      *hostRun
	vars   map[string]any
	chroot string // the task's `chroot:`: commands run inside this root
	// delegated is delegate_to: localhost: commands run on the controller.
	delegated bool
}

func (h *hostRun) readOnly(t *playbooks.Task, vars map[string]any) readOnlyHost {
	return readOnlyHost{h: h, vars: vars, delegated: t.DelegateTo != ""}
}

// scopedHost is the view of a module whose Spec declares Scope (debug,
// assert, template): it evaluates the host's variables.
type scopedHost struct{ readOnlyHost }

func (s scopedHost) Scope() map[string]any { return s.vars }

// forModule is the view t's module gets: the variables only when it
// declares Scope; any other reads only those its Args declare.
func (o readOnlyHost) forModule(t *playbooks.Task) modules.ReadOnlyHost {
	if t.Spec.Scope {
		return scopedHost{o}
	}
	return o
}

// conn is the host's connection as this task uses it.
func (o readOnlyHost) conn() transport.Conn {
	if o.delegated {
		return &local.Conn{}
	}
	if o.h.conn == nil || o.chroot == "" {
		return o.h.conn
	}
	return transport.Chroot(o.h.conn, o.chroot)
}

var _ modules.ReadOnlyHost = readOnlyHost{}

func (o readOnlyHost) Name() string         { return o.h.inv.Name }
func (o readOnlyHost) Reach() modules.Reach { return o.h.reach() }
func (o readOnlyHost) Facts() *facts.Facts {
	if o.h.facts == nil {
		return &facts.Facts{}
	}
	return o.h.facts
}
func (o readOnlyHost) Log(format string, args ...any) {
	if o.h.noLog {
		return // a module's notes may quote the task's commands
	}
	o.h.log.Printf("%s", o.h.redact.String(fmt.Sprintf(format, args...)))
}

func (o readOnlyHost) Recall(key string) (string, error) {
	return o.h.r.memory.recall(o.h.inv.Name, key)
}

// OVH is the host's read-only view of the OVH API, made from its
// variables: endpoint (else ovh_endpoint), credentials and rate.
func (o readOnlyHost) OVH(endpoint string) (*ovh.Reader, error) {
	return o.h.r.ovhAPI().Reader(endpoint, o.vars, o.Log)
}

func (o readOnlyHost) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	conn := o.conn()
	if conn != nil {
		// The gate sees the command as the module wrote it, before any chroot wrapping.
		conn = transport.ReadOnly(conn)
	}
	return o.h.run(ctx, conn, cmd, "probe")
}

func (o readOnlyHost) ReadFile(ctx context.Context, path string) ([]byte, error) {
	cmd := transport.Cmd{Args: []string{"cat", "--", path}}
	res, err := o.Probe(ctx, cmd)
	if err != nil {
		var exit *transport.ExitError
		if errors.As(err, &exit) && strings.Contains(string(res.Stderr), "No such file") {
			return nil, fmt.Errorf("read %s: %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return res.Stdout, nil
}

// fullHost is what Apply sees. plan is the plan Apply carries out: a
// command it does not cover is reported on the task's result, and refused
// under Options.Strict.
type fullHost struct {
	readOnlyHost
	plan *modules.Plan
}

var _ modules.Host = fullHost{}

// scopedFullHost is scopedHost's counterpart for Apply.
type scopedFullHost struct{ fullHost }

func (s scopedFullHost) Scope() map[string]any { return s.vars }

// fullForModule is the view t's module gets in Apply: the variables only
// when it declares Scope, as in Check (readOnlyHost.forModule).
func (o readOnlyHost) fullForModule(t *playbooks.Task, plan *modules.Plan) modules.Host {
	f := fullHost{o, plan}
	if t.Spec.Scope {
		return scopedFullHost{f}
	}
	return f
}

// OVHWriter is OVH's counterpart for Apply, which a dry run never calls.
func (f fullHost) OVHWriter(endpoint string) (*ovh.Writer, error) {
	return f.h.r.ovhAPI().Writer(endpoint, f.vars, f.Log)
}

func (f fullHost) Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	if !f.plan.Covers(cmd) {
		line := f.h.redact.String(cmd.Line())
		if f.h.noLog {
			line = "(command hidden by no_log)"
		}
		f.h.unplanned = append(f.h.unplanned, line)
		if f.h.r.Strict {
			f.h.log.Printf("refused: %s (not in the task's plan, --strict)", line)
			return transport.Result{ExitCode: -1}, fmt.Errorf("%w: %s", ErrUnplanned, cmd.Line())
		}
		f.h.log.Printf("unplanned: %s (not in the task's plan)", line)
	}
	return f.h.run(ctx, f.conn(), cmd, "run")
}

func (f fullHost) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	conn := f.conn()
	if conn == nil {
		return fmt.Errorf("%w: not connected", transport.ErrUnreachable)
	}
	start := time.Now()
	err := conn.Upload(ctx, dst, src, mode)
	f.h.log.Printf("upload %s (mode %04o) in %s: %v", dst, mode, time.Since(start).Round(time.Millisecond), errOrOK(err))
	return err
}

// Reconnect drops the connection and dials until it succeeds or ctx ends. A
// changed host key is never retried: it ends the wait at once.
func (f fullHost) Reconnect(ctx context.Context, opts transport.DialOptions) error {
	f.h.close()
	return hostkeys.Redial(ctx, func(ctx context.Context) error { return f.h.connect(ctx, opts) })
}

// ProbeDial dials until a login succeeds or ctx ends, on a connection of
// its own that it closes at once.
func (f fullHost) ProbeDial(ctx context.Context, opts transport.DialOptions) error {
	return hostkeys.Redial(ctx, func(ctx context.Context) error {
		conn, err := f.h.dial(ctx, opts)
		if err != nil {
			return err
		}
		conn.Close()
		return nil
	})
}

func (f fullHost) RefreshFacts(ctx context.Context) error { return f.h.gatherFacts(ctx) }

func (f fullHost) Remember(key, value string) error {
	f.h.log.Printf("remember %s: %q", key, value)
	return f.h.r.memory.remember(f.h.inv.Name, key, value)
}

var _ modules.KeyKeeper = fullHost{}

func (f fullHost) StateDir() string { return f.h.r.StateDir }

func (f fullHost) PinHostKey(key gossh.PublicKey) ([]gossh.PublicKey, error) {
	if f.h.r.HostKeys == nil {
		return nil, errors.New("pin a host key: this run has no known_hosts file")
	}
	port := f.h.inv.Port
	if port == 0 {
		port = 22
	}
	return f.h.r.HostKeys.Pin(f.h.inv.Name, port, key, func(msg string) {
		f.h.log.Printf("%s", msg)
		f.h.r.emit(Event{Type: EventNotice, Host: f.h.inv.Name, Msg: msg})
	})
}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// chrootMissing says why root cannot run commands yet ("" when it can): the
// runner's chroot wrapper needs the root's /bin/sh.
func (h *hostRun) chrootMissing(ctx context.Context, root string) string {
	sh := path.Join(root, "bin/sh")
	// stat, not test -x: /bin/sh in a NixOS root is a link into its own
	// /nix/store, which only resolves inside the chroot.
	_, err := h.run(ctx, transport.ReadOnly(h.conn), transport.Cmd{Args: []string{"stat", "-c", "%F", "--", sh}}, "probe")
	var exit *transport.ExitError
	if errors.As(err, &exit) {
		return fmt.Sprintf("the chroot %s is not prepared (no %s)", root, sh)
	}
	return ""
}
