// Package modules defines the contract every nixbook module follows.
//
// A module is built from its task's arguments (validated when the playbook
// loads and again once templates are rendered for a host). Check inspects the
// host through a ReadOnlyHost and returns a Plan; Apply carries out that plan
// through a Host. Only the runner decides whether Apply is called: under
// --check it never is, so no module ever sees a dry-run flag.
package modules

import (
	"context"
	"io"
	"io/fs"

	"golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/internal/transport"
)

// ReadOnlyHost is all that Check sees of a host. It has no way to change the
// host; in a dry run it also sits on a transport.ReadOnly connection.
type ReadOnlyHost interface {
	Name() string
	// Reach says where nixbook reaches the host and where the inventory
	// defines it, so that a module driving the host through another channel
	// (the OVH API) can prove it drives this host.
	Reach() Reach
	Facts() *facts.Facts
	// Probe runs a command that must not change the host.
	Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error)
	// ReadFile returns the content of a file on the host; fs.ErrNotExist
	// (wrapped) when it is missing.
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// Log writes a line into the host's log.
	Log(format string, args ...any)
	// Recall returns what a module remembered of the host under key in an
	// earlier task or run (see Host.Remember); "" when nothing.
	Recall(key string) (string, error)
	// OVH is the OVH API for this host, read-only: GET calls only, by type
	// and on the wire. The runner makes it from the host's inventory (the
	// endpoint, else ovh_endpoint; the credentials; the rate) and owns the
	// rate budget the run's hosts share per account; endpoint "" is the
	// host's.
	OVH(endpoint string) (*ovh.Reader, error)
}

// MemoryReinstall is the host memory under which partition records the
// partition tables the reinstall in progress made, and which install clears
// once the installed system answers. A disk whose table is listed is this
// reinstall's, resumed after a failure; a layout on any other disk is an
// earlier system's, erased only with wipe: true. The controller keeps it,
// not the disk, so that nothing the old system wrote can pass for it.
const MemoryReinstall = "reinstall"

// MemoryDiskNames is the host memory under which partition records, for the
// reinstall in progress, which disk each kernel name (/dev/sda) meant when
// it began: its by-id link. Another system may give the names to other
// disks; a rerun follows the disks, not the names. install clears it with
// MemoryReinstall.
const MemoryDiskNames = "reinstall-disks"

// Reach is where nixbook reaches a host.
type Reach struct {
	// Dial is the host name or address nixbook dials, after ~/.ssh/config.
	Dial string
	// Source is the host's file:line in the inventory; may be empty.
	Source string
}

// Host adds what Apply needs to change the host.
type Host interface {
	ReadOnlyHost
	Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error)
	Upload(ctx context.Context, dst string, src io.Reader, mode fs.FileMode) error
	// Reconnect drops the connection and dials again until ctx ends. With
	// NewSystem, a changed host key is accepted and recorded (the old and new
	// fingerprints are logged); otherwise a changed key is refused.
	Reconnect(ctx context.Context, opts transport.DialOptions) error
	// ProbeDial logs in to the host once more, as Reconnect dials it (at
	// opts.Address, say), until that succeeds or ctx ends, and hangs up at
	// once: the host's connection is left as it is.
	ProbeDial(ctx context.Context, opts transport.DialOptions) error
	// RefreshFacts gathers facts again (after a reboot, say).
	RefreshFacts(ctx context.Context) error
	// Remember keeps value under key for this host on the controller, for
	// later tasks and runs; an empty value forgets the key.
	Remember(key, value string) error
	// OVHWriter is OVH's counterpart that may change the server. A dry run
	// never calls Apply, so it never has one.
	OVHWriter(endpoint string) (*ovh.Writer, error)
}

// KeyKeeper is what the runner's hosts offer beside Host to a module that
// gives a host a key nixbook made on the controller.
type KeyKeeper interface {
	// StateDir is the controller's directory where nixbook keeps what it
	// knows of hosts (the directory of its known_hosts); "" when nothing is
	// kept beyond the run.
	StateDir() string
	// PinHostKey records key as the host's only key in nixbook's
	// known_hosts before the host presents it (a system about to boot with
	// a key nixbook installed), and returns the keys it replaced.
	PinHostKey(key ssh.PublicKey) (replaced []ssh.PublicKey, err error)
}

// Module is one configured task action.
type Module interface {
	// Check inspects the host and reports what Apply would change. It runs
	// the same way in dry and real runs.
	Check(ctx context.Context, h ReadOnlyHost) (*Plan, error)
	// Apply carries out p, which Check returned for this host in this run.
	// The runner never calls it in a dry run or for a plan without changes.
	Apply(ctx context.Context, h Host, p *Plan) (Output, error)
}

// Preflighter is a module that can tell, before its play changes anything
// on a host, whether it will be able to do its work there later: from the
// inventory, the OVH API or the host as it is now. The runner calls Preflight
// for every task a host is to run in a play, in dry and real runs, after
// gathering facts and before the play's first task, so that a server that is
// not the one the inventory means, say, is refused before an earlier task has
// wiped or rebooted anything. Preflight changes nothing.
type Preflighter interface {
	Preflight(ctx context.Context, h ReadOnlyHost) error
}

// Requirer is a module that needs inventory values for a host: those its
// Args declare (var tags, filled before Requires is called) and the OVH
// API's credentials. Requires reports those missing or malformed, without
// any network: validate, --check and run call it for every task and host
// before any host is touched, and report each problem once with the hosts
// it concerns, so its message does not name the host.
type Requirer interface {
	Requires(api APICheck) error
}

// APICheck reports what the host's inventory lacks, or has malformed, to
// reach the OVH API at endpoint ("": the host's): the runner's check of
// what it would build the host's API views from.
type APICheck func(endpoint string) error

// VarSource is what a Decoder offers beside the task's arguments when it
// decodes them for a host: the host's variables, from which arguments with
// a var tag default.
type VarSource interface {
	Var(name string) (any, bool)
}

// WithVars is d for a host whose variables are vars: a VarSource too, as
// the runner decodes a task for each host.
func WithVars(d Decoder, vars map[string]any) Decoder { return hostArgs{d, vars} }

type hostArgs struct {
	Decoder
	vars map[string]any
}

func (d hostArgs) Var(name string) (any, bool) {
	v, ok := d.vars[name]
	return v, ok
}

// Scoped is the host view of a module whose Spec declares Scope: the
// host's resolved variables (inventory, play, registered, extra vars).
type Scoped interface {
	Scope() map[string]any
}

// Scope returns the variables h offers a module whose Spec declares Scope;
// nil for any other module.
func Scope(h ReadOnlyHost) map[string]any {
	if s, ok := h.(Scoped); ok {
		return s.Scope()
	}
	return nil
}

// NotYetError is what Check returns when what it must inspect is not there
// in the system it sees now, but would be once earlier tasks are applied:
// ZFS tools only the installer that an earlier task boots ships, a partition
// an earlier task would create. In a dry run after a task that would change
// the host, the runner reports such a task as unknown until applied; in any
// other case it is a failure like any other.
type NotYetError struct{ Err error }

func (e *NotYetError) Error() string { return e.Err.Error() }
func (e *NotYetError) Unwrap() error { return e.Err }

// NotYet marks err as a NotYetError.
func NotYet(err error) error { return &NotYetError{Err: err} }

// Output is what a task publishes for `register`, beside the runner's own
// keys (changed, failed, skipped, msg).
type Output map[string]any

// Plan is what Check found.
type Plan struct {
	Changes []Change
	// Reboots says Apply boots the host into another system; the runner
	// reports it, and in a dry run later probes still see the old system.
	Reboots bool
	// Output is published for `register` when nothing needs to change (info
	// modules such as debug and facts) and in a dry run.
	Output Output
	// Message is shown beside the result (debug's msg, assert's reason).
	Message string
	// Data is private state handed from Check to Apply.
	Data any
}

// Changed reports whether the plan changes anything.
func (p *Plan) Changed() bool { return p != nil && len(p.Changes) > 0 }

// Commands lists every command the plan would run, in order.
func (p *Plan) Commands() []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, c.Commands...)
	}
	return out
}

// Covers reports whether Apply may run cmd under p without going beyond
// it: cmd's line is one of the plan's commands, or cmd only reads the host
// (transport.CheckReadOnly accepts it). The runner reports any other
// command Apply runs, and refuses it under --strict.
func (p *Plan) Covers(cmd transport.Cmd) bool {
	if transport.CheckReadOnly(cmd) == nil {
		return true
	}
	if p == nil {
		return false
	}
	line := cmd.Line()
	for _, c := range p.Changes {
		for _, planned := range c.Commands {
			if planned == line {
				return true
			}
		}
	}
	return false
}

// Change is one thing a plan would do.
type Change struct {
	Summary  string   // "write /etc/hosts (212 B)"
	Commands []string // the exact command lines it would run
	// Before and After are shown with --diff. Sensitive hides them.
	Before, After string
	Sensitive     bool
}

// Cmd is a shorthand that builds a transport command and records its line in
// a change, so what is shown and what is run cannot drift apart.
func (c *Change) Cmd(args ...string) transport.Cmd {
	cmd := transport.Cmd{Args: args}
	c.Commands = append(c.Commands, cmd.Line())
	return cmd
}
