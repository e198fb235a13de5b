package reboot

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/boot"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/transport"
	"github.com/nixbook/nixbook/internal/transport/local"
)

var update = flag.Bool("update", false, "rewrite golden files")

// machine is a host that reboots: after the reboot command it may still
// answer on the old boot for a while, then refuses connections, then comes
// back with a new boot id.
type machine struct {
	moduletest.Memory      // what Remember kept
	dropOnReboot      bool // the reboot command's session dies with io.EOF
	rebootExit        int  // the reboot command exits with this
	oldDials          int  // reconnects that still reach the old boot
	downDials         int  // then reconnects refused
	testFails         int  // the test command fails this many times on the new boot

	bootID    string
	connected bool
	rebooting bool
	dials     int
	runs      []string
	dialOpts  []transport.DialOptions
	refreshes int
	logs      []string
}

var _ modules.Host = (*machine)(nil)

func newMachine() *machine { return &machine{bootID: "old-boot", connected: true} }

func (m *machine) Name() string         { return "ks1" }
func (m *machine) Reach() modules.Reach { return modules.Reach{Dial: "203.0.113.10"} }
func (m *machine) Facts() *facts.Facts  { return &facts.Facts{} }
func (m *machine) Log(format string, args ...any) {
	m.logs = append(m.logs, fmt.Sprintf(format, args...))
}
func (m *machine) Upload(context.Context, string, io.Reader, fs.FileMode) error {
	return errors.New("no uploads")
}
func (m *machine) RefreshFacts(context.Context) error { m.refreshes++; return nil }

func (m *machine) Probe(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	return m.Run(ctx, cmd)
}

func (m *machine) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if !m.connected {
		return nil, fmt.Errorf("read %s: connection lost", path)
	}
	if path != boot.IDPath {
		return nil, fs.ErrNotExist
	}
	return []byte(m.bootID + "\n"), nil
}

func (m *machine) Run(ctx context.Context, cmd transport.Cmd) (transport.Result, error) {
	if !m.connected {
		return transport.Result{ExitCode: -1}, errors.New("connection lost")
	}
	line := cmd.Line()
	m.runs = append(m.runs, line)
	switch {
	case strings.Contains(line, "reboot"):
		if m.rebootExit != 0 {
			res := transport.Result{ExitCode: m.rebootExit, Stderr: []byte("reboot: Operation not permitted")}
			return res, transport.NewExitError(cmd, res)
		}
		m.rebooting = true
		if m.dropOnReboot {
			m.connected = false
			return transport.Result{ExitCode: -1}, fmt.Errorf("session: %w", io.EOF)
		}
	case m.bootID != "old-boot" && m.testFails > 0:
		m.testFails--
		res := transport.Result{ExitCode: 1, Stderr: []byte("not yet")}
		return res, transport.NewExitError(cmd, res)
	}
	return transport.Result{}, nil
}

func (m *machine) Reconnect(ctx context.Context, opts transport.DialOptions) error {
	m.dials++
	m.dialOpts = append(m.dialOpts, opts)
	m.connected = false
	switch {
	case !m.rebooting || m.oldDials > 0:
		if m.rebooting {
			m.oldDials--
		}
		m.connected = true
	case m.downDials > 0:
		m.downDials--
		return fmt.Errorf("dial ks1: connection refused: %w", transport.ErrUnreachable)
	default:
		m.bootID = "new-boot"
		m.connected = true
	}
	return nil
}

// ProbeDial is not used by reboot.
func (m *machine) ProbeDial(ctx context.Context, opts transport.DialOptions) error {
	return errors.New("reboot does not probe")
}

func TestReboot(t *testing.T) {
	tests := []struct {
		name          string
		args          string
		setup         func(*machine)
		wantErr       string
		wantDials     int
		wantRuns      int // reboot command and test commands
		wantRefreshes int
		wantSleeps    string
	}{
		{
			name:          "connection drops, host comes back",
			setup:         func(m *machine) { m.dropOnReboot = true; m.downDials = 3 },
			wantDials:     4,
			wantRuns:      2,
			wantRefreshes: 1,
			wantSleeps:    "0s 0s 1s 2s 4s",
		},
		{
			name:          "old boot still answers at first",
			setup:         func(m *machine) { m.oldDials = 2; m.downDials = 2 },
			wantDials:     5,
			wantRuns:      2,
			wantRefreshes: 1,
			wantSleeps:    "0s 0s 1s 2s 4s 8s",
		},
		{
			name:          "test command fails at first",
			setup:         func(m *machine) { m.dropOnReboot = true; m.testFails = 2 },
			wantDials:     3,
			wantRuns:      4,
			wantRefreshes: 1,
			wantSleeps:    "0s 0s 1s 2s",
		},
		{
			name:       "delays",
			args:       "pre_reboot_delay: 3s\npost_reboot_delay: 20s",
			setup:      func(m *machine) { m.dropOnReboot = true },
			wantDials:  1,
			wantRuns:   2,
			wantSleeps: "3s 20s",
			// elapsed is checked below
			wantRefreshes: 1,
		},
		{
			name:       "never comes back",
			args:       "timeout: 30s",
			setup:      func(m *machine) { m.dropOnReboot = true; m.downDials = 1000 },
			wantErr:    "wait for the reboot: gave up after 30s and 6 attempts: dial ks1: connection refused: unreachable",
			wantDials:  6,
			wantRuns:   1,
			wantSleeps: "0s 0s 1s 2s 4s 8s 10s",
		},
		{
			name:       "never actually reboots",
			args:       "timeout: 30s",
			setup:      func(m *machine) { m.oldDials = 1000 },
			wantErr:    "still the old boot",
			wantDials:  6,
			wantRuns:   1,
			wantSleeps: "0s 0s 1s 2s 4s 8s 10s",
		},
		{
			name:       "reboot command fails",
			setup:      func(m *machine) { m.rebootExit = 1 },
			wantErr:    "reboot command: command exited 1",
			wantRuns:   1,
			wantSleeps: "0s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine()
			tt.setup(m)
			mod := moduletest.New(t, Spec, tt.args)
			clock := moduletest.NewClock()
			mod.(*module).clock = clock.Time()
			ctx := context.Background()
			p, err := mod.Check(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			out, err := mod.Apply(ctx, m, p)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if m.dials != tt.wantDials {
				t.Errorf("dials = %d, want %d", m.dials, tt.wantDials)
			}
			if len(m.runs) != tt.wantRuns {
				t.Errorf("runs = %q, want %d", m.runs, tt.wantRuns)
			}
			if m.refreshes != tt.wantRefreshes {
				t.Errorf("refreshes = %d, want %d", m.refreshes, tt.wantRefreshes)
			}
			if got := clock.Sleeps(); got != tt.wantSleeps {
				t.Errorf("sleeps = %q, want %q", got, tt.wantSleeps)
			}
			if err != nil {
				return
			}
			if m.bootID != "new-boot" {
				t.Error("apply returned before the new boot")
			}
			total := clock.Elapsed()
			if out["rebooted"] != true || out["elapsed"] != int(total.Seconds()) {
				t.Errorf("output = %v, want rebooted after %d s", out, int(total.Seconds()))
			}
		})
	}
}

func TestNewSystemReachesEveryDial(t *testing.T) {
	for _, newSystem := range []bool{false, true} {
		m := newMachine()
		m.dropOnReboot, m.downDials = true, 2
		mod := moduletest.New(t, Spec, fmt.Sprintf("new_system: %v", newSystem))
		clock := moduletest.NewClock()
		mod.(*module).clock = clock.Time()
		p, err := mod.Check(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mod.Apply(context.Background(), m, p); err != nil {
			t.Fatal(err)
		}
		for i, o := range m.dialOpts {
			if o.NewSystem != newSystem {
				t.Errorf("new_system %v: dial %d asked NewSystem=%v", newSystem, i, o.NewSystem)
			}
		}
	}
}

func TestPlanGolden(t *testing.T) {
	// Check reads this machine's real boot id and changes nothing.
	h := moduletest.NewLocalHost(t)
	var b strings.Builder
	for _, args := range []string{
		"",
		"timeout: 20m\nnew_system: true\ntest_command: [nixos-version]",
		"reboot_command: systemctl kexec\ntest_command: test -e /etc/NIXOS",
	} {
		p, err := moduletest.New(t, Spec, args).Check(context.Background(), h.ReadOnly())
		if err != nil {
			t.Fatal(err)
		}
		if !p.Reboots {
			t.Error("plan does not say it reboots")
		}
		b.WriteString("== " + strings.ReplaceAll(args, "\n", "; ") + "\n" + moduletest.FormatPlan(p))
	}
	moduletest.Golden(t, "testdata/plan.golden", b.String(), *update)
}

func TestCheckReadsBootID(t *testing.T) {
	want, err := os.ReadFile(boot.IDPath)
	if err != nil {
		t.Skip("no boot id here:", err)
	}
	p, err := moduletest.New(t, Spec, "").Check(context.Background(), moduletest.NewLocalHost(t).ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Data.(*plan).bootID; got != strings.TrimSpace(string(want)) || got == "" {
		t.Errorf("boot id = %q, want %q", got, want)
	}
}

// TestDetachReturnsAtOnce runs the detaching wrapper for real, with a
// harmless command in place of reboot: the session must end before the
// command does, as an SSH session must before the host goes down.
func TestDetachReturnsAtOnce(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "done")
	cmd := transport.Cmd{Args: detach([]string{"sh", "-c", `sleep 0.5; echo late; touch "$1"`, "sh", marker})}
	start := time.Now()
	res, err := (&local.Conn{WaitDelay: 5 * time.Second}).Run(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Fatalf("the session lasted %s: it waited for the detached command", d)
	}
	if len(res.Stdout) != 0 {
		t.Errorf("stdout = %q: the detached command still writes to the session", res.Stdout)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the command finished before the session returned")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			return // it ran on after the session
		}
		if time.Now().After(deadline) {
			t.Fatal("the detached command never finished")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNew(t *testing.T) {
	for args, wantErr := range map[string]string{
		"timeout: 0":            "timeout must be positive",
		"test_command: ''":      "must not be empty",
		"reboot_timeout: 600":   "unknown key \"reboot_timeout\"",
		"reboot_command: \"'\"": "unterminated single quote",
	} {
		_, err := Spec.New(moduletest.Decoder(args))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: err = %v, want %q", args, err, wantErr)
		}
	}
}
