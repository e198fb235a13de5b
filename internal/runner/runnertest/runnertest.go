// Package runnertest runs a playbook in a test the way `nixbook run` does:
// the real runner over the SSH transport, with a known_hosts file of the
// test's, every event kept and every task result logged.
//
//	res := runnertest.Run(ctx, t, runnertest.Config{
//		Inventory: f.FleetYAML, Playbook: playbook, KnownHosts: known,
//		Registry: modules.NewRegistry(Spec, command.Spec),
//	})
//	if r := res.HostRecap("ks1"); r.Failed != 0 { ... }
package runnertest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/inventory"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/playbooks"
	"github.com/nixbook/nixbook/internal/runner"
	"github.com/nixbook/nixbook/internal/tmpl"
	sshtransport "github.com/nixbook/nixbook/internal/transport/ssh"
)

// DefaultTimeout bounds a run whose Config sets no Timeout.
const DefaultTimeout = 3 * time.Minute

// Config is one run.
type Config struct {
	Inventory string            // the inventory file
	Playbook  string            // the playbook's YAML
	Registry  *modules.Registry // the modules the playbook may use
	// Templates renders the playbook; nil: a new engine. Pass the one the
	// registry's modules were built with when they render too.
	Templates      *tmpl.Engine
	KnownHosts     string         // the known_hosts file the run checks and records host keys in
	ConnectTimeout time.Duration  // the dialer's; zero: its default
	Options        runner.Options // Check, Diff, ExtraVars...; LogDir empty: a temporary directory
	Timeout        time.Duration  // zero: DefaultTimeout
}

// Result is what a run reported.
type Result struct {
	Recap  *runner.Recap
	Events []runner.Event
	LogDir string // where the per-host logs are
}

// Run runs cfg.Playbook on cfg.Inventory and fails the test when the run
// cannot start (a bad inventory or playbook); what happens on the hosts is
// in the Result.
func Run(ctx context.Context, t testing.TB, cfg Config) *Result {
	t.Helper()
	inv, err := inventory.Load(cfg.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := playbooks.LoadBytes("test.yml", []byte(cfg.Playbook), t.TempDir(), cfg.Registry)
	if err != nil {
		t.Fatal(err)
	}
	eng := cfg.Templates
	if eng == nil {
		eng = tmpl.New()
	}
	opts := cfg.Options
	if opts.LogDir == "" {
		opts.LogDir = t.TempDir()
	}
	d := sshtransport.NewDialer(sshtransport.DialerOptions{Store: hostkeys.New(cfg.KnownHosts), SSHConfigPath: "none", ConnectTimeout: cfg.ConnectTimeout})
	defer d.Close()
	res := &Result{LogDir: opts.LogDir}
	var mu sync.Mutex
	r := &runner.Runner{Dialer: d, Templates: eng, Options: opts, Events: func(e runner.Event) {
		mu.Lock()
		defer mu.Unlock()
		res.Events = append(res.Events, e)
		if e.Type == runner.EventResult {
			t.Logf("%s %s: %s %s", e.Host, e.Task, e.Status, e.Msg)
		}
	}}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res.Recap, err = r.Run(ctx, pb, inv, "")
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// HostRecap is the host's line of the recap, zero when the host is not in it.
func (r *Result) HostRecap(host string) runner.HostRecap {
	for _, h := range r.Recap.Hosts {
		if h.Host == host {
			return h
		}
	}
	return runner.HostRecap{}
}

// TaskResult is the result of a whole task (not of one of its items) on
// the host; zero when the task did not end there.
func (r *Result) TaskResult(host, task string) runner.Event {
	var last runner.Event
	for _, e := range r.Events {
		if e.Type == runner.EventResult && e.Host == host && e.Task == task && e.Item == nil {
			last = e
		}
	}
	return last
}

// Message is what the task said on the host.
func (r *Result) Message(host, task string) string { return r.TaskResult(host, task).Msg }

// Statuses lists how each task ended on the host, in order, as
// "task=status".
func (r *Result) Statuses(host string) []string {
	var out []string
	for _, e := range r.Events {
		if e.Type == runner.EventResult && e.Host == host && e.Item == nil {
			out = append(out, fmt.Sprintf("%s=%s", e.Task, e.Status))
		}
	}
	return out
}

// Planned is the commands of the changes the task showed on the host (a
// dry run, or --diff).
func (r *Result) Planned(host, task string) []string {
	var out []string
	for _, c := range r.TaskResult(host, task).Changes {
		out = append(out, c.Commands...)
	}
	return out
}

// Output is what the task printed on the host, line by line.
func (r *Result) Output(host, task string) string {
	var lines []string
	for _, e := range r.Events {
		if e.Type == runner.EventOutput && e.Host == host && e.Task == task {
			lines = append(lines, e.Line)
		}
	}
	return strings.Join(lines, "\n")
}

// KnownKeys lists the fingerprints a known_hosts file records for host,
// on any port.
func KnownKeys(t testing.TB, knownHosts, host string) []string {
	t.Helper()
	entries, err := hostkeys.New(knownHosts).List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		for _, name := range strings.Split(e.Host, ",") {
			if name == host || strings.HasPrefix(name, "["+host+"]:") {
				out = append(out, e.Fingerprint)
				break
			}
		}
	}
	return out
}
