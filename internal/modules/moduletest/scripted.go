package moduletest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/internal/transport"
)

// Reply is what a scripted command prints and how it exits.
type Reply struct {
	Stdout, Stderr string
	Exit           int
}

// ScriptedHost is a host for unit tests of module plans: probes answer from
// a table keyed by the command line, files from a map, and anything
// unscripted is an error the test sees, so a plan cannot quietly depend on
// a probe its golden file does not show.
type ScriptedHost struct {
	HostName string
	FactsVal *facts.Facts
	Files    map[string]string // ReadFile; missing paths are fs.ErrNotExist
	Probes   map[string]Reply  // by command line
	Runs     map[string]Reply  // by command line; unscripted runs succeed silently
	// Reconnect, when set, stands in for the reconnect.
	ReconnectFn func(ctx context.Context, opts transport.DialOptions) error

	Ran        []string // command lines Run ran, in order
	Uploads    map[string]string
	Logs       []string
	Unexpected []string // probes nobody scripted
	Memory
}

var _ modules.Host = (*ScriptedHost)(nil)

// Name is the host's name, ks1 by default.
func (h *ScriptedHost) Name() string {
	if h.HostName == "" {
		return "ks1"
	}
	return h.HostName
}

// Reach is a documentation address.
func (h *ScriptedHost) Reach() modules.Reach { return modules.Reach{Dial: "203.0.113.10"} }

// Facts returns FactsVal or empty facts.
func (h *ScriptedHost) Facts() *facts.Facts {
	if h.FactsVal == nil {
		return &facts.Facts{}
	}
	return h.FactsVal
}

// Log records a line.
func (h *ScriptedHost) Log(format string, args ...any) {
	h.Logs = append(h.Logs, fmt.Sprintf(format, args...))
}

// Probe answers from Probes, refusing mutating programs as a read-only
// connection does.
func (h *ScriptedHost) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	if transport.IsMutating(cmd.Args) {
		return transport.Result{ExitCode: -1}, fmt.Errorf("%w: %s", transport.ErrReadOnly, cmd.Line())
	}
	r, ok := h.Probes[cmd.Line()]
	if !ok {
		h.Unexpected = append(h.Unexpected, cmd.Line())
		return transport.Result{ExitCode: -1}, fmt.Errorf("%w: %s", ErrUnscripted, cmd.Line())
	}
	return result(cmd, r)
}

func result(cmd transport.Cmd, r Reply) (transport.Result, error) {
	res := transport.Result{ExitCode: r.Exit, Stdout: []byte(r.Stdout), Stderr: []byte(r.Stderr)}
	if cmd.Stdout != nil {
		io.WriteString(cmd.Stdout, r.Stdout)
	}
	if cmd.Stderr != nil {
		io.WriteString(cmd.Stderr, r.Stderr)
	}
	if r.Exit != 0 {
		return res, transport.NewExitError(cmd, res)
	}
	return res, nil
}

// ReadFile answers from Files.
func (h *ScriptedHost) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if up, ok := h.Uploads[path]; ok {
		return []byte(up), nil
	}
	s, ok := h.Files[path]
	if !ok {
		return nil, fmt.Errorf("read %s: %w", path, fs.ErrNotExist)
	}
	return []byte(s), nil
}

// Run records the command and answers from Runs, else from Probes, else
// with success.
func (h *ScriptedHost) Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	line := cmd.Line()
	h.Ran = append(h.Ran, line)
	if r, ok := h.Runs[line]; ok {
		return result(cmd, r)
	}
	if r, ok := h.Probes[line]; ok {
		return result(cmd, r)
	}
	return transport.Result{}, nil
}

// Upload records the content.
func (h *ScriptedHost) Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error {
	b, err := io.ReadAll(src)
	if err != nil {
		return err
	}
	if h.Uploads == nil {
		h.Uploads = map[string]string{}
	}
	h.Uploads[dst] = string(b)
	h.Ran = append(h.Ran, fmt.Sprintf("upload %s (mode %v)", dst, mode))
	return nil
}

// Reconnect calls ReconnectFn, or succeeds.
func (h *ScriptedHost) Reconnect(ctx context.Context, opts transport.DialOptions) error {
	if h.ReconnectFn != nil {
		return h.ReconnectFn(ctx, opts)
	}
	return ctx.Err()
}

// ProbeDial succeeds: a scripted host answers wherever it is dialed.
func (h *ScriptedHost) ProbeDial(ctx context.Context, opts transport.DialOptions) error {
	return ctx.Err()
}

// RefreshFacts does nothing.
func (h *ScriptedHost) RefreshFacts(ctx context.Context) error { return ctx.Err() }

// Missing is the reply of stat, which, sha256sum and the like for a path
// that does not exist.
func Missing(path string) Reply {
	return Reply{Stderr: fmt.Sprintf("stat: cannot statx '%s': No such file or directory\n", path), Exit: 1}
}

// CheckScripted runs m's Check through a view of h that cannot be asserted
// to a Host.
func CheckScripted(ctx context.Context, m modules.Module, h *ScriptedHost) (*modules.Plan, error) {
	return m.Check(ctx, readOnly{h})
}

type readOnly struct{ h *ScriptedHost }

func (r readOnly) Name() string                             { return r.h.Name() }
func (r readOnly) Reach() modules.Reach                     { return r.h.Reach() }
func (r readOnly) Recall(key string) (string, error)        { return r.h.Recall(key) }
func (r readOnly) OVH(endpoint string) (*ovh.Reader, error) { return r.h.OVH(endpoint) }
func (r readOnly) Facts() *facts.Facts                      { return r.h.Facts() }
func (r readOnly) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	return r.h.Probe(ctx, cmd)
}
func (r readOnly) ReadFile(ctx context.Context, path string) ([]byte, error) {
	return r.h.ReadFile(ctx, path)
}
func (r readOnly) Log(format string, args ...any) { r.h.Log(format, args...) }

// Outcome renders a Check's result for a golden file: the plan, or the
// error, then the probes nobody scripted.
func Outcome(p *modules.Plan, err error, h *ScriptedHost, format func(*modules.Plan) string) string {
	var b strings.Builder
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
	} else {
		b.WriteString(format(p))
	}
	for _, u := range h.Unexpected {
		fmt.Fprintf(&b, "unscripted probe: %s\n", u)
	}
	return b.String()
}

// ErrUnscripted marks a probe the table lacks.
var ErrUnscripted = errors.New("unscripted probe")

// Line is the command line of argv, for keys of Probes and Runs.
func Line(argv ...string) string { return transport.Cmd{Args: argv}.Line() }

// mountNSEnv marks a test binary re-run in its own mount namespace.
const mountNSEnv = "NIXBOOK_TEST_PRIVATE_MOUNTS"

// InPrivateMounts runs the calling test again in a private mount namespace
// (unshare -m --propagation private), so that what it mounts is seen by
// nobody else and goes away with it. It returns true in the re-run, where
// the test goes on; the outer run reports the inner one's outcome and
// returns false.
func InPrivateMounts(t *testing.T) bool {
	t.Helper()
	if os.Getenv(mountNSEnv) == "1" {
		return true
	}
	heavytest.Root(t, "a private mount namespace")
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) is not installed")
	}
	cmd := exec.Command(unshare, "-m", "--propagation", "private", os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), mountNSEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a private mount namespace:\n%s", out)
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("the test failed in its mount namespace: %v", err)
	}
	return false
}
