// Package moduletest helps test modules on this machine: a modules.Host over
// any transport.Conn (the local transport by default), a strict argument
// decoder like the playbook loader's, and a contract suite every module can
// run against real files and processes.
package moduletest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/internal/transport"
	"github.com/nixbook/nixbook/internal/transport/local"
	"github.com/nixbook/nixbook/internal/yamlx"
)

// Decoder returns a decoder over YAML text that is as strict as the
// playbook loader, since it is the loader's: unknown keys and wrong types
// are errors naming the line. Empty text is an empty argument list.
func Decoder(text string) modules.Decoder { return yamlArgs(text) }

// DecoderFor is Decoder for a host whose variables are vars: arguments
// the text leaves out default from those their var tag names, as the
// runner decodes a task for each host.
func DecoderFor(text string, vars map[string]any) modules.Decoder {
	return modules.WithVars(yamlArgs(text), vars)
}

type yamlArgs string

func (s yamlArgs) Decode(v any) error {
	n, err := yamlx.Parse("args.yml", []byte(s))
	if err != nil {
		return err
	}
	return yamlx.Decode("args.yml", n, v)
}

// New builds spec's module from YAML arguments and fails the test if that
// fails.
func New(t testing.TB, spec modules.Spec, args string) modules.Module {
	t.Helper()
	m, err := spec.New(Decoder(args))
	if err != nil {
		t.Fatalf("%s: new: %v", spec.Name, err)
	}
	return m
}

// NewFor is New for a host whose variables are vars (see DecoderFor).
func NewFor(t testing.TB, spec modules.Spec, args string, vars map[string]any) modules.Module {
	t.Helper()
	m, err := spec.New(DecoderFor(args, vars))
	if err != nil {
		t.Fatalf("%s: new: %v", spec.Name, err)
	}
	return m
}

// LocalHost is a modules.Host over a transport connection, by default one to
// this machine. Probe always goes through transport.ReadOnly, as the
// runner's does.
type LocalHost struct {
	HostName string        // "" means "localhost"
	ReachVal modules.Reach // zero: dialed as 127.0.0.1
	Memory
	Conn     transport.Conn // nil means a local.Conn
	VarsMap  map[string]any
	FactsVal *facts.Facts
	// Logf receives the host's log lines; nil discards them.
	Logf func(format string, args ...any)
	// Redial, when set, makes Reconnect real for a host that reboots or
	// kexecs (a simulated server): Conn is dropped and dialed again until
	// Redial succeeds, refuses a changed host key, or ctx ends. ProbeDial
	// dials with it too, leaving Conn alone.
	Redial func(ctx context.Context, opts transport.DialOptions) (transport.Conn, error)
	// Gather, when set, makes RefreshFacts real: FactsVal becomes what it
	// reads over the connection.
	Gather func(ctx context.Context, conn transport.Conn) (*facts.Facts, error)

	mu         sync.Mutex
	logs       []string
	ran        []transport.Cmd
	reconnects int
	refreshes  int
}

// NewLocalHost returns a host on this machine that logs through t.
func NewLocalHost(t testing.TB) *LocalHost {
	return &LocalHost{Conn: &local.Conn{}, VarsMap: map[string]any{}, FactsVal: &facts.Facts{}, Logf: t.Logf}
}

var _ modules.Host = (*LocalHost)(nil)

func (h *LocalHost) conn() transport.Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Conn == nil {
		return &local.Conn{}
	}
	return h.Conn
}

// Name is the host's inventory name.
func (h *LocalHost) Name() string {
	if h.HostName == "" {
		return "localhost"
	}
	return h.HostName
}

// Reach returns ReachVal, or 127.0.0.1 when it is unset.
func (h *LocalHost) Reach() modules.Reach {
	if h.ReachVal.Dial == "" {
		return modules.Reach{Dial: "127.0.0.1", Source: h.ReachVal.Source}
	}
	return h.ReachVal
}

// OVH is the host's read-only view of the API, from VarsMap.
func (h *LocalHost) OVH(endpoint string) (*ovh.Reader, error) {
	return h.Reader(endpoint, h.Scope(), h.Log)
}

// OVHWriter is the host's writing view of the API, from VarsMap.
func (h *LocalHost) OVHWriter(endpoint string) (*ovh.Writer, error) {
	return h.Writer(endpoint, h.Scope(), h.Log)
}

// Scope returns VarsMap: the variables a module that declares Scope
// evaluates (the runner gives no other module any).
func (h *LocalHost) Scope() map[string]any {
	if h.VarsMap == nil {
		return map[string]any{}
	}
	return h.VarsMap
}

// Facts returns FactsVal, or empty facts.
func (h *LocalHost) Facts() *facts.Facts {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.FactsVal == nil {
		return &facts.Facts{}
	}
	return h.FactsVal
}

// Probe runs cmd through a read-only view of the connection.
func (h *LocalHost) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	h.Log("probe: %s", cmd.Line())
	return transport.ReadOnly(h.conn()).Run(ctx, cmd)
}

// ReadFile reads path with `cat`, as the runner does over SSH.
func (h *LocalHost) ReadFile(ctx context.Context, path string) ([]byte, error) {
	res, err := h.Probe(ctx, transport.Cmd{Args: []string{"cat", "--", path}})
	if err != nil {
		var exit *transport.ExitError
		if errors.As(err, &exit) && strings.Contains(string(res.Stderr), "No such file") {
			return nil, fmt.Errorf("read %s: %w", path, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return res.Stdout, nil
}

// Log records a line and passes it to Logf.
func (h *LocalHost) Log(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	h.mu.Lock()
	h.logs = append(h.logs, line)
	h.mu.Unlock()
	if h.Logf != nil {
		h.Logf("%s: %s", h.Name(), line)
	}
}

// Logs returns the lines logged so far.
func (h *LocalHost) Logs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.logs...)
}

// Run runs cmd on the connection.
func (h *LocalHost) Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	h.Log("run: %s", cmd.Line())
	h.mu.Lock()
	h.ran = append(h.ran, cmd)
	h.mu.Unlock()
	return h.conn().Run(ctx, cmd)
}

// Ran returns the commands Run ran so far (probes are not among them).
func (h *LocalHost) Ran() []transport.Cmd {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]transport.Cmd(nil), h.ran...)
}

// Upload writes src to dst through the connection.
func (h *LocalHost) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	h.Log("upload: %s (mode %v)", dst, mode)
	return h.conn().Upload(ctx, dst, src, mode)
}

// Reconnect counts, and dials again with Redial when it is set (a local
// connection cannot drop).
func (h *LocalHost) Reconnect(ctx context.Context, opts transport.DialOptions) error {
	h.mu.Lock()
	h.reconnects++
	old := h.Conn
	h.mu.Unlock()
	if h.Redial == nil {
		return ctx.Err()
	}
	if old != nil {
		old.Close()
	}
	return hostkeys.Redial(ctx, func(ctx context.Context) error {
		conn, err := h.Redial(ctx, opts)
		if err == nil {
			h.mu.Lock()
			h.Conn = conn
			h.mu.Unlock()
		}
		return err
	})
}

// ProbeDial dials with Redial, when it is set, until a dial succeeds, and
// closes that connection; Conn is left alone.
func (h *LocalHost) ProbeDial(ctx context.Context, opts transport.DialOptions) error {
	if h.Redial == nil {
		return ctx.Err()
	}
	return hostkeys.Redial(ctx, func(ctx context.Context) error {
		conn, err := h.Redial(ctx, opts)
		if err == nil {
			conn.Close()
		}
		return err
	})
}

// RefreshFacts counts, and gathers facts again with Gather when it is set.
func (h *LocalHost) RefreshFacts(ctx context.Context) error {
	h.mu.Lock()
	h.refreshes++
	h.mu.Unlock()
	if h.Gather == nil {
		return ctx.Err()
	}
	f, err := h.Gather(ctx, h.conn())
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.FactsVal = f
	h.mu.Unlock()
	return nil
}

// Reconnects reports how often Reconnect ran.
func (h *LocalHost) Reconnects() int { h.mu.Lock(); defer h.mu.Unlock(); return h.reconnects }

// Refreshes reports how often RefreshFacts ran.
func (h *LocalHost) Refreshes() int { h.mu.Lock(); defer h.mu.Unlock(); return h.refreshes }

// ReadOnly returns the view Check gets: no Run, no Upload, so a module
// cannot type-assert its way to changing the host.
func (h *LocalHost) ReadOnly() modules.ReadOnlyHost { return readOnlyView{h} }

type readOnlyView struct{ h *LocalHost }

func (v readOnlyView) Name() string                             { return v.h.Name() }
func (v readOnlyView) Reach() modules.Reach                     { return v.h.Reach() }
func (v readOnlyView) Recall(key string) (string, error)        { return v.h.Recall(key) }
func (v readOnlyView) OVH(endpoint string) (*ovh.Reader, error) { return v.h.OVH(endpoint) }
func (v readOnlyView) Scope() map[string]any                    { return v.h.Scope() }
func (v readOnlyView) Facts() *facts.Facts                      { return v.h.Facts() }
func (v readOnlyView) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	return v.h.Probe(ctx, cmd)
}
func (v readOnlyView) ReadFile(ctx context.Context, path string) ([]byte, error) {
	return v.h.ReadFile(ctx, path)
}
func (v readOnlyView) Log(format string, args ...any) { v.h.Log(format, args...) }

// Memory is what a fake host remembers (modules.Host.Remember), in memory,
// for one goroutine, and the OVH API its views reach. Embed it in a fake
// used through a pointer; M may be preset.
type Memory struct {
	M map[string]string
	// API is how the host reaches the OVH API, as the runner's hosts do:
	// its settings (short pauses against an emulator, say); the endpoint,
	// credentials and rate come from APIVars, or from the variables a fake
	// passes to Reader and Writer; without credentials OVH fails, as the
	// runner's does.
	API     ovh.Env
	APIVars map[string]any

	limiters *ovh.Limiters // API.Limiters when unset: a fake host is its own run
	readers  []*ovh.Reader // every read-only view handed out, for RefusedWrites
}

// OVH is the host's read-only view of the API, from APIVars.
func (m *Memory) OVH(endpoint string) (*ovh.Reader, error) {
	return m.Reader(endpoint, m.APIVars, nil)
}

// OVHWriter is the host's writing view of the API, from APIVars.
func (m *Memory) OVHWriter(endpoint string) (*ovh.Writer, error) {
	return m.Writer(endpoint, m.APIVars, nil)
}

func (m *Memory) env() ovh.Env {
	e := m.API
	if e.Limiters == nil {
		if m.limiters == nil {
			m.limiters = ovh.NewLimiters()
		}
		e.Limiters = m.limiters
	}
	return e
}

// Reader makes a read-only view of the API for a host whose variables are
// vars, as the runner does, and keeps it for RefusedWrites.
func (m *Memory) Reader(endpoint string, vars map[string]any, log func(string, ...any)) (*ovh.Reader, error) {
	r, err := m.env().Reader(endpoint, vars, log)
	if err == nil {
		m.readers = append(m.readers, r)
	}
	return r, err
}

// Writer is Reader's counterpart for Apply.
func (m *Memory) Writer(endpoint string, vars map[string]any, log func(string, ...any)) (*ovh.Writer, error) {
	return m.env().Writer(endpoint, vars, log)
}

// RefusedWrites counts the writes the read-only views handed out so far
// refused: a module's Check that tried to change a server through the API.
func (m *Memory) RefusedWrites() int64 {
	var n int64
	for _, r := range m.readers {
		n += r.Calls().Refused
	}
	return n
}

// Recall returns the value remembered under key.
func (m *Memory) Recall(key string) (string, error) { return m.M[key], nil }

// Remember keeps value under key; "" forgets it.
func (m *Memory) Remember(key, value string) error {
	if m.M == nil {
		m.M = map[string]string{}
	}
	if value == "" {
		delete(m.M, key)
	} else {
		m.M[key] = value
	}
	return nil
}
