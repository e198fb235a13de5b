package moduletest

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/ovh"
	"github.com/nixbook/nixbook/internal/transport"
)

// System is what a machine runs in one boot.
type System struct {
	Hostname, OSRelease string
	// HostKey is the key its sshd shows; "" makes a new one at every boot,
	// as OVH's rescue does.
	HostKey string
}

// Machine is the part of a fake server that boots, for fakes of modules
// that reboot or kexec it: the system it runs, its boot id, whether it
// answers, and its host key as the runner's known_hosts sees it. A fake
// embeds it and models the server's programs beside it.
//
// After Reboot the machine is down: commands fail as on a lost connection,
// DownDials dials are refused, then it answers on the new boot. Reconnect
// refuses a host key that changed unless the dial expects a new system
// (transport.DialOptions.NewSystem), which records the change, as the
// runner's hosts do. A dial at another address (DialOptions.Address)
// reaches it only at one of OtherAddresses.
type Machine struct {
	Memory
	HostName string // default ks1
	Address  string // what nixbook dials; default 203.0.113.10
	// OtherAddresses are the machine's other addresses (its IPv6, say),
	// where a dial that names one reaches it; elsewhere a dial fails.
	OtherAddresses []string
	// DownDials is how many dials a reboot refuses before the new boot
	// answers (default 2, set by NewMachine).
	DownDials int
	// NeverBack makes a rebooted machine never answer again.
	NeverBack bool

	mu         sync.Mutex
	sys        System
	boot       int
	down       bool
	downLeft   int
	reboots    int
	knownKey   string
	keyChanges []string
	dials      []transport.DialOptions
	probes     []transport.DialOptions
	facts      *facts.Facts
	refreshes  int
	logs       []string
}

// NewMachine is a machine running sys on its first boot, whose host key
// nixbook knows.
func NewMachine(sys System) *Machine {
	m := &Machine{HostName: "ks1", Address: "203.0.113.10", DownDials: 2, sys: sys, boot: 1}
	if m.sys.HostKey == "" {
		m.sys.HostKey = m.newKey()
	}
	m.knownKey = m.sys.HostKey
	m.facts = m.factsNow()
	return m
}

func (m *Machine) newKey() string { return fmt.Sprintf("host-key-%d", m.boot) }

func (m *Machine) factsNow() *facts.Facts {
	osr := facts.ParseOSRelease(m.sys.OSRelease)
	return &facts.Facts{Hostname: m.sys.Hostname, OS: osr, BootID: fmt.Sprintf("boot-%d", m.boot), Rescue: facts.IsRescue(m.sys.Hostname, osr)}
}

// Reboot makes the machine boot into: it goes down at once.
func (m *Machine) Reboot(into System) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reboots++
	m.boot++
	m.down, m.downLeft = true, m.DownDials
	m.sys = into
	if m.sys.HostKey == "" {
		m.sys.HostKey = m.newKey()
	}
}

// Running is what the machine runs now.
func (m *Machine) Running() System { m.mu.Lock(); defer m.mu.Unlock(); return m.sys }

// SetRunning changes what the machine runs on its current boot, and its
// facts with it (a fixture's starting point).
func (m *Machine) SetRunning(sys System) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sys = sys
	m.facts = m.factsNow()
}

// Boot is the number of the machine's current boot, 1 at first.
func (m *Machine) Boot() int { m.mu.Lock(); defer m.mu.Unlock(); return m.boot }

// Reboots counts the reboots.
func (m *Machine) Reboots() int { m.mu.Lock(); defer m.mu.Unlock(); return m.reboots }

// Up returns nil while the machine answers, else the error a lost
// connection gives.
func (m *Machine) Up() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return fmt.Errorf("%w: connection lost", transport.ErrUnreachable)
	}
	return nil
}

// SystemFile answers what any Linux system holds: its boot id, hostname
// and os-release; ok is false for any other path.
func (m *Machine) SystemFile(path string) (data []byte, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch path {
	case "/proc/sys/kernel/random/boot_id":
		return []byte(fmt.Sprintf("boot-%d\n", m.boot)), true
	case "/etc/hostname":
		return []byte(m.sys.Hostname + "\n"), true
	case "/etc/os-release":
		return []byte(m.sys.OSRelease), true
	}
	return nil, false
}

// KeyChanges are the host key changes nixbook accepted, "old -> new".
func (m *Machine) KeyChanges() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.keyChanges...)
}

// KnowKey makes key the one nixbook has on record for the machine.
func (m *Machine) KnowKey(key string) { m.mu.Lock(); defer m.mu.Unlock(); m.knownKey = key }

// Dials are the options of every Reconnect.
func (m *Machine) Dials() []transport.DialOptions {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]transport.DialOptions(nil), m.dials...)
}

// ProbeDials are the options of every ProbeDial.
func (m *Machine) ProbeDials() []transport.DialOptions {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]transport.DialOptions(nil), m.probes...)
}

// Refreshes counts RefreshFacts calls that gathered facts.
func (m *Machine) Refreshes() int { m.mu.Lock(); defer m.mu.Unlock(); return m.refreshes }

// AllLogs is everything logged, one line each.
func (m *Machine) AllLogs() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.logs, "\n")
}

// Name is the machine's inventory name.
func (m *Machine) Name() string { return m.HostName }

// Reach is how nixbook dials the machine.
func (m *Machine) Reach() modules.Reach { return modules.Reach{Dial: m.Address, Source: "fleet.yml:7"} }

// Facts are those gathered last.
func (m *Machine) Facts() *facts.Facts { m.mu.Lock(); defer m.mu.Unlock(); return m.facts }

// SetFacts replaces the gathered facts (a fixture's).
func (m *Machine) SetFacts(f *facts.Facts) { m.mu.Lock(); defer m.mu.Unlock(); m.facts = f }

// Log records a line.
func (m *Machine) Log(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logs = append(m.logs, fmt.Sprintf(format, args...))
}

// Reconnect dials the machine as the runner does.
func (m *Machine) Reconnect(ctx context.Context, opts transport.DialOptions) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dials = append(m.dials, opts)
	return m.dial(ctx, opts)
}

// ProbeDial dials the machine as Reconnect does, once.
func (m *Machine) ProbeDial(ctx context.Context, opts transport.DialOptions) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.probes = append(m.probes, opts)
	return m.dial(ctx, opts)
}

func (m *Machine) dial(ctx context.Context, opts transport.DialOptions) error {
	at := m.Address
	if opts.Address != "" && opts.Address != m.Address {
		at = opts.Address
		if !slices.Contains(m.OtherAddresses, at) {
			return fmt.Errorf("%w: dial tcp %s: connect: no route to host", transport.ErrUnreachable, net.JoinHostPort(at, "22"))
		}
	}
	if m.NeverBack && m.reboots > 0 {
		return fmt.Errorf("%w: dial tcp %s: connect: no route to host", transport.ErrUnreachable, net.JoinHostPort(at, "22"))
	}
	if m.down {
		if m.downLeft > 0 {
			m.downLeft--
			return fmt.Errorf("%w: dial tcp %s: connect: connection refused", transport.ErrUnreachable, net.JoinHostPort(at, "22"))
		}
		m.down = false
	}
	if m.sys.HostKey != m.knownKey {
		if !opts.NewSystem {
			return &hostkeys.ChangedError{Name: m.HostName}
		}
		m.keyChanges = append(m.keyChanges, m.knownKey+" -> "+m.sys.HostKey)
		m.knownKey = m.sys.HostKey
	}
	return ctx.Err()
}

// RefreshFacts gathers the running system's facts.
func (m *Machine) RefreshFacts(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return fmt.Errorf("%w: connection lost", transport.ErrUnreachable)
	}
	m.refreshes++
	m.facts = m.factsNow()
	return ctx.Err()
}

// OVH is the machine's read-only view of the API, from APIVars, logging
// its calls as the runner's hosts do.
func (m *Machine) OVH(endpoint string) (*ovh.Reader, error) {
	return m.Reader(endpoint, m.APIVars, m.Log)
}

// OVHWriter is OVH's counterpart for Apply.
func (m *Machine) OVHWriter(endpoint string) (*ovh.Writer, error) {
	return m.Writer(endpoint, m.APIVars, m.Log)
}
