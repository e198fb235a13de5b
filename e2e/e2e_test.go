// Package e2e runs the stock playbooks with the nixbook command line against
// the simulated Kimsufi fleet: real namespaces, sshd, loop disks, parted,
// mkfs, the OVH API emulator and the NixOS payload fixtures.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nixbook/nixbook/internal/cli"
	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/transport"
	sshtransport "github.com/nixbook/nixbook/internal/transport/ssh"
	"github.com/nixbook/nixbook/sim"
	"github.com/nixbook/nixbook/sim/simtest"
)

func TestMain(m *testing.M) { simtest.Main(m) }

// run is one `nixbook run` of a stock playbook against the fleet.
type run struct {
	code int
	out  string
}

// recap returns a host's PLAY RECAP counters, e.g. "ok=9 changed=4 unreachable=0 failed=0".
func (r run) recap(t *testing.T, host string) map[string]int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + host + ` +: (.*)$`).FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("no recap line for %s in:\n%s", host, r.out)
	}
	out := map[string]int{}
	for _, kv := range strings.Fields(m[1]) {
		if k, n, ok := strings.Cut(kv, "="); ok {
			var v int
			fmt.Sscan(n, &v)
			out[k] = v
		}
	}
	return out
}

type fleet struct {
	*simtest.Fleet
	knownHosts string
	logs       string
}

func start(t *testing.T, n int, opts ...simtest.Option) *fleet {
	t.Helper()
	heavytest.Root(t, "a simulated fleet: namespaces, loop devices")
	if testing.Short() {
		t.Skip("end-to-end fleet tests skipped with -short")
	}
	f := simtest.Start(t, n, opts...)
	dir := t.TempDir()
	return &fleet{Fleet: f, knownHosts: filepath.Join(dir, "known_hosts"), logs: filepath.Join(dir, "logs")}
}

// nixbook runs `nixbook run PLAYBOOK -i fleet.yml ARGS...` in process.
func (f *fleet) nixbook(t *testing.T, playbook string, args ...string) run {
	t.Helper()
	argv := append([]string{"nixbook", "run", playbook, "-i", f.FleetYAML, "--known-hosts", f.knownHosts,
		"--no-color", "--log-dir", f.logs}, args...)
	var stdout, stderr bytes.Buffer
	code := cli.Main(argv, &stdout, &stderr)
	r := run{code: code, out: stdout.String() + stderr.String()}
	t.Logf("nixbook run %s %s: exit %d", playbook, strings.Join(args, " "), code)
	if code != 0 {
		// What the simulator knows and nixbook cannot: why a host is down.
		for _, h := range f.Hosts {
			st := f.Status(h.Name)
			t.Logf("%s: mode %s, up %v, ssh %v, boots %d: %s", h.Name, st.Mode, st.Up, st.SSH, st.Boots, st.Why)
		}
	}
	// Every stock module runs only what its plan lists (or reads).
	for _, l := range strings.Split(r.out, "\n") {
		if strings.Contains(l, "unplanned: $") {
			t.Errorf("nixbook run %s %s: a task ran a command its plan did not list:\n%s", playbook, strings.Join(args, " "), l)
		}
	}
	return r
}

func (f *fleet) names() []string {
	var out []string
	for _, h := range f.Hosts {
		out = append(out, h.Name)
	}
	return out
}

func (f *fleet) diskSums() map[string]string {
	sums := map[string]string{}
	for _, h := range f.Hosts {
		for disk, sum := range f.DiskSHA256(h.Name) {
			sums[h.Name+":"+disk] = sum
		}
	}
	return sums
}

// osRelease logs into host with the key nixbook recorded (no other key is
// accepted) and returns its /etc/os-release.
func (f *fleet) osRelease(t *testing.T, host string) string {
	t.Helper()
	return f.sh(t, host, "cat /etc/os-release")
}

// sh runs a shell command on host as root, accepting only the host key
// nixbook recorded, and returns its output.
func (f *fleet) sh(t *testing.T, host, command string) string {
	t.Helper()
	return f.shKnown(t, host, f.knownHosts, command)
}

// shKnown is sh with the host keys of another known_hosts file (an empty
// one takes whatever key the host serves).
func (f *fleet) shKnown(t *testing.T, host, knownHosts, command string) string {
	t.Helper()
	d := sshtransport.NewDialer(sshtransport.DialerOptions{Store: hostkeys.New(knownHosts), SSHConfigPath: "none", ConnectTimeout: 10 * time.Second})
	defer d.Close()
	h := f.Host(host)
	conn, err := d.Dial(context.Background(), transport.Target{Name: host, Address: h.Addr, Port: h.Port, User: "root", KeyFiles: []string{h.KeyFile}}, transport.DialOptions{})
	if err != nil {
		t.Fatalf("%s: %v", host, err)
	}
	defer conn.Close()
	res, err := conn.Run(context.Background(), transport.Cmd{Args: []string{"sh", "-c", command}})
	if err != nil {
		t.Fatalf("%s: %s: %v: %s", host, command, err, res.Stderr)
	}
	return string(res.Stdout)
}

// recordedKey is the fingerprint nixbook's known_hosts holds for host.
func (f *fleet) recordedKey(t *testing.T, host string) string {
	t.Helper()
	entries, err := hostkeys.New(f.knownHosts).List()
	if err != nil {
		t.Fatal(err)
	}
	// A host on another port than 22 (a vm host) is known as [host]:port.
	known := host
	if p := f.Host(host).Port; p != 0 && p != 22 {
		known = fmt.Sprintf("[%s]:%d", host, p)
	}
	var fps []string
	for _, e := range entries {
		if e.Host == known {
			fps = append(fps, e.Fingerprint)
		}
	}
	if len(fps) != 1 {
		t.Fatalf("%s: %d recorded keys: %v", host, len(fps), entries)
	}
	return fps[0]
}

func (f *fleet) liveKey(t *testing.T, host string) string {
	t.Helper()
	fp, err := sim.Fingerprint(f.HostKey(host))
	if err != nil {
		t.Fatal(err)
	}
	return fp
}
