package cli_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	gossh "golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/cli"
	"github.com/nixbook/nixbook/internal/sshdtest"
)

var update = flag.Bool("update", false, "rewrite the scripts' expected output")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"nixbook": func() { os.Exit(cli.Main(os.Args, os.Stdout, os.Stderr)) },
		// netcat HOST PORT: a ProxyCommand for the scripts.
		"netcat": func() { os.Exit(netcat(os.Args[1:])) },
	})
}

// TestScripts runs the CLI scripts in testdata/script against three real
// sshd servers on loopback, reachable through $INVENTORY.
func TestScripts(t *testing.T) {
	dir := t.TempDir()
	// The servers trust a user CA, whose key the scripts sign certificates
	// with (ssh-keygen -s $USER_CA), as OpenSSH users do.
	userCA := filepath.Join(dir, "user_ca")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "user CA", "-f", userCA).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	servers := sshdtest.StartFleet(t, 3, sshdtest.Options{Config: []string{"TrustedUserCAKeys " + userCA + ".pub"}})
	certHost, hostCA := sshdtest.StartCertified(t, sshdtest.Options{Name: "c1", ClientKeyFile: servers[0].KeyFile}, "c1.example.net")
	blackAddr, blackPort := sshdtest.Blackhole(t)
	inv := sshdtest.WriteInventory(t, dir, servers)
	bare := writeBareInventory(t, dir, servers)
	ini := writeINIInventory(t, dir, servers)
	testscript.Run(t, testscript.Params{
		Dir:           "testdata/script",
		UpdateScripts: *update,
		Setup: func(env *testscript.Env) error {
			env.Setenv("INVENTORY", inv)
			env.Setenv("BARE_INVENTORY", bare)
			env.Setenv("INI_INVENTORY", ini)
			env.Setenv("SSH_USER", servers[0].User)
			env.Setenv("SSH_KEY", servers[0].KeyFile)
			env.Setenv("NO_COLOR", "")
			env.Setenv("HOME", env.WorkDir)
			// For the user's own ~/.ssh/known_hosts: h1 as OpenSSH names
			// it, its host key and a key it does not have.
			env.Setenv("H1_ADDR", servers[0].Addr)
			env.Setenv("H1_PORT", strconv.Itoa(servers[0].Port))
			env.Setenv("H1_KNOWN_AS", fmt.Sprintf("[%s]:%d", servers[0].Addr, servers[0].Port))
			env.Setenv("H1_HOST_KEY", strings.TrimSpace(string(gossh.MarshalAuthorizedKey(servers[0].HostKeys()[0]))))
			env.Setenv("OTHER_HOST_KEY", strings.TrimSpace(string(gossh.MarshalAuthorizedKey(servers[1].HostKeys()[0]))))
			env.Setenv("H2_ADDR", servers[1].Addr)
			env.Setenv("H2_PORT", strconv.Itoa(servers[1].Port))
			env.Setenv("USER_CA", userCA)
			// c1 presents a host certificate for c1.example.net signed by
			// $HOST_CA (a public key line).
			env.Setenv("C1_ADDR", certHost.Addr)
			env.Setenv("C1_PORT", strconv.Itoa(certHost.Port))
			env.Setenv("HOST_CA", strings.TrimSpace(string(gossh.MarshalAuthorizedKey(hostCA))))
			// A listener that accepts and never answers.
			env.Setenv("BLACKHOLE_ADDR", blackAddr)
			env.Setenv("BLACKHOLE_PORT", strconv.Itoa(blackPort))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": exitCode,
			"waitfor":  waitFor,
			"bgrun":    bg.run,
			"signal":   bg.signal,
			"bgwait":   bg.wait,
			"gone":     gone,
		},
	})
}

// netcat copies stdin to a TCP connection and the connection to stdout.
func netcat(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: netcat HOST PORT")
		return 2
	}
	c, err := net.Dial("tcp", net.JoinHostPort(args[0], args[1]))
	if err != nil {
		fmt.Fprintln(os.Stderr, "netcat:", err)
		return 1
	}
	go func() {
		io.Copy(c, os.Stdin)
		c.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(os.Stdout, c)
	return 0
}

// writeBareInventory writes the servers' addresses and ports, with no user
// or key, as $BARE_INVENTORY (for -u and --private-key).
func writeBareInventory(t *testing.T, dir string, servers []*sshdtest.Server) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("all:\n  hosts:\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "    %s:\n      host: %s\n      port: %d\n", s.Name, s.Addr, s.Port)
	}
	path := filepath.Join(dir, "bare.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeINIInventory writes the servers as an Ansible INI inventory, as the
// benchmark's fleet-up.sh does, as $INI_INVENTORY.
func writeINIInventory(t *testing.T, dir string, servers []*sshdtest.Server) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# the fleet\n[fleet]\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "%s ansible_host=%s ansible_port=%d ansible_user=%s ansible_ssh_private_key_file=%s\n", s.Name, s.Addr, s.Port, s.User, s.KeyFile)
	}
	b.WriteString("\n[fleet:vars]\ngreeting = hello from ini\n")
	path := filepath.Join(dir, "inventory.ini")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// exitCode runs a command and checks its exact exit code:
//
//	exitcode 2 nixbook run play.yml -i $INVENTORY
//
// Its stdout and stderr go to $WORK/stdout and $WORK/stderr.
func exitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	cmd := exec.Command(args[1], args[2:]...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = append(os.Environ(), "PATH="+ts.Getenv("PATH"), "HOME="+ts.Getenv("HOME"), "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	got := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		got = exit.ExitCode()
	} else if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	work := ts.Getenv("WORK")
	os.WriteFile(filepath.Join(work, "stdout"), stdout.Bytes(), 0o644)
	os.WriteFile(filepath.Join(work, "stderr"), stderr.Bytes(), 0o644)
	if got != want {
		ts.Fatalf("%s exited %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args[1:], " "), got, want, stdout.String(), stderr.String())
	}
}

// waitFor waits up to 30 s for a file to exist and contain a pattern:
//
//	waitfor $WORK/logs/h1.log 'run: sleep 60'
func waitFor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitfor FILE PATTERN")
	}
	re, err := regexp.Compile(args[1])
	if err != nil {
		ts.Fatalf("waitfor: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(ts.MkAbs(args[0])); err == nil && re.Match(data) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("waitfor: %s never matched %q", args[0], args[1])
}

// bg runs commands in the background with any signal sent to them, which
// testscript's own & and kill (INT and KILL only) cannot:
//
//	bgrun nb nixbook run long.yml -i $INVENTORY
//	signal nb TERM
//	bgwait nb 143
var bg = &background{procs: map[string]*bgProc{}}

type background struct {
	mu    sync.Mutex
	procs map[string]*bgProc // by $WORK and name
}

type bgProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan error
}

func (b *background) key(ts *testscript.TestScript, name string) string {
	return ts.Getenv("WORK") + "\x00" + name
}

func (b *background) run(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: bgrun NAME command [args...]")
	}
	p := &bgProc{cmd: exec.Command(args[1], args[2:]...), done: make(chan error, 1)}
	p.cmd.Dir = ts.Getenv("WORK")
	p.cmd.Env = append(os.Environ(), "PATH="+ts.Getenv("PATH"), "HOME="+ts.Getenv("HOME"), "NO_COLOR=1")
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	ts.Check(p.cmd.Start())
	go func() { p.done <- p.cmd.Wait() }()
	b.mu.Lock()
	b.procs[b.key(ts, args[0])] = p
	b.mu.Unlock()
	ts.Defer(func() { p.cmd.Process.Kill() })
}

func (b *background) get(ts *testscript.TestScript, name string) *bgProc {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.procs[b.key(ts, name)]
	if p == nil {
		ts.Fatalf("no background command %q", name)
	}
	return p
}

func (b *background) signal(ts *testscript.TestScript, neg bool, args []string) {
	sigs := map[string]syscall.Signal{"INT": syscall.SIGINT, "TERM": syscall.SIGTERM, "HUP": syscall.SIGHUP}
	if neg || len(args) != 2 || sigs[args[1]] == 0 {
		ts.Fatalf("usage: signal NAME INT|TERM|HUP")
	}
	ts.Check(b.get(ts, args[0]).cmd.Process.Signal(sigs[args[1]]))
}

// wait waits (at most 60 s) for a background command and checks its exit
// code; its output goes to $WORK/stdout and $WORK/stderr.
func (b *background) wait(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: bgwait NAME CODE")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	p := b.get(ts, args[0])
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		ts.Fatalf("%s still running after 60 s", args[0])
	}
	work := ts.Getenv("WORK")
	os.WriteFile(filepath.Join(work, "stdout"), p.stdout.Bytes(), 0o644)
	os.WriteFile(filepath.Join(work, "stderr"), p.stderr.Bytes(), 0o644)
	if got := p.cmd.ProcessState.ExitCode(); got != want {
		ts.Fatalf("%s exited %d, want %d\nstdout:\n%s\nstderr:\n%s", args[0], got, want, p.stdout.String(), p.stderr.String())
	}
}

// gone checks that the process whose pid a file holds has ended (a zombie
// nobody reaps counts as ended):
//
//	gone $WORK/sleep-h1
func gone(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: gone PIDFILE")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	pid := strings.TrimSpace(string(data))
	stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return
	}
	// pid (comm) STATE ...: the state follows the last parenthesis.
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
		return
	}
	ts.Fatalf("process %s still runs: %s", pid, stat)
}
