package ovh

import (
	"context"
	"time"
)

// Reader is a host's read-only way to the API, as the runner hands it to
// Check and Preflight: it has no method that writes, and its client refuses
// any call but GET (Config.ReadOnly), so a dry run cannot change a server
// through the API whatever a module does. Its errors carry Resolved.Explain's
// advice.
type Reader struct {
	c      *Client
	res    *Resolved
	lookup LookupFunc
	wait   WaitOptions
}

// Writer is what Apply gets: the reader's calls and the ones that change a
// server.
type Writer struct{ Reader }

// Reader resolves a host's endpoint, credentials and rate from vars (see
// Env.Client) and returns a read-only view of the API for it.
func (e Env) Reader(endpoint string, vars map[string]any, log func(format string, args ...any)) (*Reader, error) {
	return e.access(endpoint, vars, log, true)
}

// Writer is Reader's counterpart for Apply.
func (e Env) Writer(endpoint string, vars map[string]any, log func(format string, args ...any)) (*Writer, error) {
	r, err := e.access(endpoint, vars, log, false)
	if err != nil {
		return nil, err
	}
	return &Writer{Reader: *r}, nil
}

func (e Env) access(endpoint string, vars map[string]any, log func(format string, args ...any), readOnly bool) (*Reader, error) {
	wait, err := e.WaitOptions(vars)
	if err != nil {
		return nil, err
	}
	c, res, err := e.client(endpoint, vars, log, readOnly)
	if err != nil {
		return nil, err
	}
	return &Reader{c: c, res: res, lookup: e.Lookup, wait: wait}, nil
}

func (r *Reader) explain(err error) error {
	if err == nil {
		return nil
	}
	return r.res.Explain(err)
}

// Endpoint is the API root the reader calls.
func (r *Reader) Endpoint() string { return r.c.Endpoint() }

// Limiter is the account's budget, shared by the run's hosts.
func (r *Reader) Limiter() *Limiter { return r.c.Limiter() }

// Calls counts the calls made so far through this view.
func (r *Reader) Calls() Calls { return r.c.Calls() }

// Wait is the host's task poll settings (the ovh_task_poll variable).
func (r *Reader) Wait() WaitOptions { return r.wait }

// GetServer reads a server (see Client.GetServer).
func (r *Reader) GetServer(ctx context.Context, service string) (*Server, error) {
	srv, err := r.c.GetServer(ctx, service)
	return srv, r.explain(err)
}

// GetBoot reads one netboot.
func (r *Reader) GetBoot(ctx context.Context, service string, id int64) (*Boot, error) {
	b, err := r.c.GetBoot(ctx, service, id)
	return b, r.explain(err)
}

// RangeBoots lists the netboots of a type for the server's range.
func (r *Reader) RangeBoots(ctx context.Context, srv *Server, bootType string) ([]Boot, error) {
	b, err := r.c.RangeBoots(ctx, srv, bootType)
	return b, r.explain(err)
}

// OwnBoot finds want among the server's own netboots (see Client.OwnBoot).
func (r *Reader) OwnBoot(ctx context.Context, service string, want Boot, pick func([]Boot) (Boot, error)) (Boot, error) {
	b, err := r.c.OwnBoot(ctx, service, want, pick)
	return b, r.explain(err)
}

// Verify proves that the claim's service is the host (see Client.Verify).
func (r *Reader) Verify(ctx context.Context, claim Claim) (*Server, error) {
	srv, err := r.c.Verify(ctx, claim, r.lookup)
	return srv, r.explain(err)
}

// CheckCredential proves the credentials valid and granting need (see
// Client.CheckCredential).
func (r *Reader) CheckCredential(ctx context.Context, need []Rule) (time.Time, error) {
	t, err := r.c.CheckCredential(ctx, r.res, need)
	return t, r.explain(err)
}

// Do makes a call that may change a server.
func (w *Writer) Do(ctx context.Context, req Request, out any) error {
	return w.explain(w.c.Do(ctx, req, out))
}

// Reboot asks for a hard reboot (see Client.Reboot).
func (w *Writer) Reboot(ctx context.Context, service string, o WaitOptions) (*Task, error) {
	t, err := w.c.Reboot(ctx, service, o)
	return t, w.explain(err)
}

// WaitTask polls a task this writer started until it ends (see
// Client.WaitTask).
func (w *Writer) WaitTask(ctx context.Context, service string, id int64, o WaitOptions) (*Task, error) {
	t, err := w.c.WaitTask(ctx, service, id, o)
	return t, w.explain(err)
}
