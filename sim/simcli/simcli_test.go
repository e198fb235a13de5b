package simcli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixbook/nixbook/internal/cliargs"
	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/hostinit"
)

// TestMain lets the test binary be what `up` starts in the background
// (`serve`) and the hosts' helper.
func TestMain(m *testing.M) {
	if code, ok := hostinit.Dispatch(os.Args); ok {
		os.Exit(code)
	}
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(Main(os.Args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	if code := Main(append([]string{"nixbook-sim"}, args...), &out, &out); code != 0 {
		return out.String(), fmt.Errorf("exit %d: %s", code, out.String())
	}
	return out.String(), nil
}

func TestUpStatusRebootDown(t *testing.T) {
	heavytest.Root(t, "a simulated fleet: namespaces, loop devices")
	dir := filepath.Join(t.TempDir(), "fleet")
	sock, _ := sim.ControlSocket(dir)
	id := filepath.Base(filepath.Dir(sock))
	t.Cleanup(func() { _, _ = runCLI(t, "down", "--dir", dir) })

	out, err := runCLI(t, "up", "2", "--dir", dir, "--no-payload", "--subnet", "198.19.200.0/24", "--boot-delay", "100ms")
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	for _, want := range []string{"2 simulated servers up", "fleet.yml"} {
		if !strings.Contains(out, want) {
			t.Errorf("up printed no %q:\n%s", want, out)
		}
	}
	if !hasRow(out, "ks2", "198.19.200.2", "rescue") {
		t.Errorf("up printed no row for ks2:\n%s", out)
	}
	if out, err := runCLI(t, "up", "2", "--dir", dir, "--no-payload"); err == nil || !strings.Contains(err.Error(), "already up") {
		t.Errorf("a second up in the same directory: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "reboot", "ks1", "--into", "off", "--dir", dir); err != nil {
		t.Fatalf("reboot: %v\n%s", err, out)
	}
	out, err = runCLI(t, "status", "--dir", dir)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if !hasRow(out, "ks1", "198.19.200.1", "off") || !hasRow(out, "ks2", "198.19.200.2", "rescue") || !strings.Contains(out, "ks1 does not answer SSH: powered off") {
		t.Errorf("status:\n%s", out)
	}
	for range 2 {
		if out, err := runCLI(t, "down", "--dir", dir); err != nil {
			t.Fatalf("down: %v\n%s", err, out)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("down left %s", dir)
	}
	if out, _ := exec.Command("ip", "-o", "link").Output(); strings.Contains(string(out), "nbs"+id) {
		t.Errorf("down left links:\n%s", out)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), id) {
		t.Errorf("down left namespaces:\n%s", out)
	}
}

// hasRow reports whether a line of a table starts with these columns.
func hasRow(out string, cols ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(cols) && strings.Join(f[:len(cols)], " ") == strings.Join(cols, " ") {
			return true
		}
	}
	return false
}

// TestFlagsAfterArguments: nixbook-sim's flags may follow its arguments,
// as nixbook's do; which flags take a value comes from their definitions.
func TestFlagsAfterArguments(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nixbook-sim up 3 --dir d", "nixbook-sim up --dir d 3"},
		{"nixbook-sim up --dir=d 3 --no-payload", "nixbook-sim up --dir=d --no-payload 3"},
		{"nixbook-sim up 3 --calm-api --dir d", "nixbook-sim up --calm-api --dir d 3"},
		{"nixbook-sim reboot ks1 --into rescue --dir d", "nixbook-sim reboot --into rescue --dir d ks1"},
		{"nixbook-sim status --json --dir d", "nixbook-sim status --json --dir d"},
		{"nixbook-sim", "nixbook-sim"},
	}
	a := app(io.Discard, io.Discard)
	for _, tt := range tests {
		if got := strings.Join(cliargs.Interspersed(a, strings.Fields(tt.in)), " "); got != tt.want {
			t.Errorf("Interspersed(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
