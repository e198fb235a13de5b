package ssh

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/sshdtest"
	"github.com/nixbook/nixbook/internal/transport"
)

// fixture is a dialer with its own known_hosts file and no ssh config.
type fixture struct {
	t     *testing.T
	d     *Dialer
	store *hostkeys.Store
	mu    sync.Mutex
	logs  []string
}

func newFixture(t *testing.T, opts DialerOptions) *fixture {
	t.Helper()
	f := &fixture{t: t, store: hostkeys.New(filepath.Join(t.TempDir(), "known_hosts"))}
	opts.Store = f.store
	if opts.SSHConfigPath == "" {
		opts.SSHConfigPath = "none"
	}
	f.d = NewDialer(opts)
	t.Cleanup(func() { f.d.Close() })
	return f
}

func (f *fixture) log(l string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, l)
}

func (f *fixture) dialOpts(newSystem bool) transport.DialOptions {
	return transport.DialOptions{NewSystem: newSystem, Log: f.log}
}

func (f *fixture) dial(s *sshdtest.Server) *Conn {
	f.t.Helper()
	c, err := f.d.DialSSH(context.Background(), s.Target(), f.dialOpts(false))
	if err != nil {
		f.t.Fatalf("dial %s: %v\n%s", s.Name, err, s.Log())
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}

func (f *fixture) knownHosts() string {
	f.t.Helper()
	b, err := os.ReadFile(f.store.Path())
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

func run(t *testing.T, c transport.Conn, args ...string) transport.Result {
	t.Helper()
	res, err := c.Run(context.Background(), transport.Cmd{Args: args})
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return res
}

func TestRunExitCodesAndOutput(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{})
	c := newFixture(t, DialerOptions{}).dial(s)
	tests := []struct {
		name         string
		args         []string
		stdin        string
		code         int
		stdout, serr string
	}{
		{"success", []string{"true"}, "", 0, "", ""},
		{"failure", []string{"false"}, "", 1, "", ""},
		{"exit code", []string{"sh", "-c", "exit 42"}, "", 42, "", ""},
		{"killed by a signal", []string{"sh", "-c", "kill -TERM $$"}, "", 128 + 15, "", ""},
		{"streams apart", []string{"sh", "-c", "echo out; echo err >&2; echo out2"}, "", 0, "out\nout2\n", "err\n"},
		{"stderr on failure", []string{"sh", "-c", "echo boom >&2; exit 3"}, "", 3, "", "boom\n"},
		{"stdin", []string{"cat"}, "line one\nline two\n", 0, "line one\nline two\n", ""},
		{"no stdin is EOF", []string{"wc", "-c"}, "", 0, "0\n", ""},
		{"binary stdin", []string{"od", "-An", "-tx1"}, "\x00\xff\n", 0, " 00 ff 0a\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := transport.Cmd{Args: tt.args}
			if tt.stdin != "" {
				cmd.Stdin = strings.NewReader(tt.stdin)
			}
			var liveOut, liveErr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &liveOut, &liveErr
			res, err := c.Run(context.Background(), cmd)
			if res.ExitCode != tt.code {
				t.Errorf("exit code %d, want %d (err %v)", res.ExitCode, tt.code, err)
			}
			var exitErr *transport.ExitError
			if tt.code == 0 && err != nil {
				t.Errorf("err = %v", err)
			}
			if tt.code != 0 && (!errors.As(err, &exitErr) || exitErr.ExitCode != tt.code) {
				t.Errorf("err = %v, want *ExitError with code %d", err, tt.code)
			}
			if errors.Is(err, transport.ErrUnreachable) {
				t.Errorf("a failing command counted as unreachable: %v", err)
			}
			serr := tt.serr
			if tt.code == 128+15 && !loginShellIsBash(t) {
				// sshd runs the command through the user's login shell:
				// bash execs it, dash waits for it and reports its signal.
				serr = "Terminated\n"
			}
			if string(res.Stdout) != tt.stdout || string(res.Stderr) != serr {
				t.Errorf("stdout %q stderr %q, want %q %q", res.Stdout, res.Stderr, tt.stdout, serr)
			}
			if liveOut.String() != tt.stdout || liveErr.String() != serr {
				t.Errorf("live copies %q %q", liveOut.String(), liveErr.String())
			}
		})
	}
}

func TestRunStreamsOutput(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{})
	c := newFixture(t, DialerOptions{}).dial(s)
	flag := filepath.Join(t.TempDir(), "go on")
	pr, pw := io.Pipe()
	done := make(chan transport.Result, 1)
	go func() {
		res, err := c.Run(context.Background(), transport.Cmd{
			Args:   []string{"sh", "-c", `echo first; while [ ! -e "$1" ]; do sleep 0.02; done; echo second`, "sh", flag},
			Stdout: pw,
		})
		if err != nil {
			t.Error(err)
		}
		pw.Close()
		done <- res
	}()
	buf := make([]byte, 64)
	n, err := pr.Read(buf)
	if err != nil || string(buf[:n]) != "first\n" {
		t.Fatalf("first read %q, %v", buf[:n], err)
	}
	select {
	case <-done:
		t.Fatal("Run returned before the command could end")
	default:
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(pr)
	if string(rest) != "second\n" {
		t.Fatalf("rest %q", rest)
	}
	if res := <-done; string(res.Stdout) != "first\nsecond\n" {
		t.Fatalf("stdout %q", res.Stdout)
	}
}

func TestArgumentsArriveVerbatim(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{})
	c := newFixture(t, DialerOptions{}).dial(s)
	dir := t.TempDir()
	canary := filepath.Join(dir, "pwned")
	args := []string{
		"$(touch " + canary + ")",
		"`touch " + canary + "`",
		"it's", `say "hi"`, `back\slash`, "two  spaces", " lead", "trail ",
		"new\nline", "tab\there", "*", "?", "[a-z]*", "~", "$HOME", "${PATH}", "a;b", "a|b", "a&&b",
		"> " + canary, "-n", "", "ünïcödé", "!", "#comment",
	}
	res := run(t, c, append([]string{"printf", `%s\0`}, args...)...)
	got := strings.Split(string(res.Stdout), "\x00")
	got = got[:len(got)-1]
	if !slices.Equal(got, args) {
		t.Fatalf("remote received\n%q\nwant\n%q", got, args)
	}
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("an argument was run by the remote shell")
	}

	workdir := filepath.Join(dir, "a dir with 'quotes' and $dollars")
	if err := os.Mkdir(workdir, 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(context.Background(), transport.Cmd{
		Args: []string{"sh", "-c", `printf '%s\0' "$PWD" "$GREETING" "$EMPTY"`},
		Dir:  workdir,
		Env:  map[string]string{"GREETING": "hello 'world' $(id) \"x\"", "EMPTY": ""},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := workdir + "\x00hello 'world' $(id) \"x\"\x00\x00"
	if string(res.Stdout) != want {
		t.Fatalf("got %q, want %q", res.Stdout, want)
	}
}

func TestUpload(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		noSFTP bool
	}{{"sftp", false}, {"shell fallback", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := sshdtest.Start(t, sshdtest.Options{NoSFTP: tt.noSFTP})
			c := newFixture(t, DialerOptions{}).dial(s)
			dir := filepath.Join(t.TempDir(), "odd 'dir' $x")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(dir, "conf; rm -rf nothing")
			big := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB: many SFTP packets

			for _, step := range []struct {
				data []byte
				mode os.FileMode
			}{
				{[]byte("first\n"), 0o640},
				{big, 0o755},
				{[]byte("secret\n"), 0o600},
			} {
				var before os.FileInfo
				if fi, err := os.Stat(dst); err == nil {
					before = fi
				}
				if err := c.Upload(context.Background(), dst, bytes.NewReader(step.data), step.mode); err != nil {
					t.Fatalf("upload: %v", err)
				}
				got, err := os.ReadFile(dst)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, step.data) {
					t.Fatalf("content: %d bytes, want %d", len(got), len(step.data))
				}
				fi, _ := os.Stat(dst)
				if fi.Mode().Perm() != step.mode {
					t.Fatalf("mode %v, want %v", fi.Mode().Perm(), step.mode)
				}
				// Replaced by rename: a new inode, never the old file rewritten.
				if before != nil && os.SameFile(before, fi) {
					t.Fatal("dst was rewritten in place, not replaced")
				}
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Fatalf("leftovers beside dst: %v", entries)
			}
			c.mu.Lock()
			usedSFTP, noSFTP := c.sftp != nil, c.noSFTP
			c.mu.Unlock()
			if usedSFTP == tt.noSFTP || noSFTP != tt.noSFTP {
				t.Fatalf("sftp client %v, no sftp %v", usedSFTP, noSFTP)
			}
		})
	}
}

func TestUploadFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{})
	c := newFixture(t, DialerOptions{}).dial(s)
	dst := filepath.Join(t.TempDir(), "missing-dir", "file")
	err := c.Upload(context.Background(), dst, strings.NewReader("x"), 0o644)
	if err == nil || errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("err = %v, want a plain failure", err)
	}
	// The connection is still good.
	run(t, c, "true")
}

func TestCancelKillsRemoteCommand(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{})
	c := newFixture(t, DialerOptions{}).dial(s)
	marker := strconv.Itoa(60000 + os.Getpid()%30000)
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	done := make(chan error, 1)
	var elapsed time.Duration
	go func() {
		_, err := c.Run(ctx, transport.Cmd{Args: []string{"sh", "-c", `echo started; exec sleep "$1"`, "sh", marker}, Stdout: &out})
		done <- err
	}()
	// The output may reach us after the command is asleep: wait for both,
	// as what arrives after the cancel is dropped on purpose.
	waitFor(t, 5*time.Second, func() bool { return sleeping(marker) && out.String() == "started\n" })
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		elapsed = time.Since(start)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return within a second of the cancel")
	}
	t.Logf("Run returned %s after cancel", elapsed)
	waitFor(t, 3*time.Second, func() bool { return !sleeping(marker) }, s.Log)
	if out.String() != "started\n" {
		t.Fatalf("live output %q", out.String())
	}
	run(t, c, "true") // the connection survives
}

// A run cancelled just before its connection is closed, as on Ctrl-C: the
// remote command, a child of the remote shell here, must be gone once Close
// returns.
func TestCancelThenCloseKillsRemoteCommand(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{})
	c := newFixture(t, DialerOptions{}).dial(s)
	marker := strconv.Itoa(30000 + os.Getpid()%30000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, transport.Cmd{Args: []string{"sh", "-c", `sleep "$1"; echo never`, "sh", marker}})
		done <- err
	}()
	waitFor(t, 5*time.Second, func() bool { return sleeping(marker) })
	cancel()
	<-done
	c.Close()
	waitFor(t, 500*time.Millisecond, func() bool { return !sleeping(marker) }, s.Log)
}

func sleeping(arg string) bool {
	want := []byte("sleep\x00" + arg + "\x00")
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Equal(b, want) {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, d time.Duration, cond func() bool, diag ...func() string) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	for _, f := range diag {
		t.Log(f())
	}
	t.Fatalf("condition not met within %s", d)
}

func TestHandshakeIsBounded(t *testing.T) {
	t.Parallel()
	addr, port := sshdtest.Blackhole(t)
	target := transport.Target{Name: "stuck", Address: addr, Port: port, KeyFiles: []string{sshdtest.NewClientKey(t)}}

	f := newFixture(t, DialerOptions{ConnectTimeout: 300 * time.Millisecond})
	err := dialWithin(t, 2*time.Second, func() error {
		_, err := f.d.Dial(context.Background(), target, transport.DialOptions{})
		return err
	})
	if !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}

	// The context bounds it too.
	f = newFixture(t, DialerOptions{ConnectTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = dialWithin(t, 2*time.Second, func() error {
		_, err := f.d.Dial(ctx, target, transport.DialOptions{})
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

// dialWithin fails the test if dial has not returned within d.
func dialWithin(t *testing.T, d time.Duration, dial func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- dial() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("dial still running after %s", d)
		return nil
	}
}

func TestNothingListening(t *testing.T) {
	t.Parallel()
	addr, port := sshdtest.ClosedPort(t)
	f := newFixture(t, DialerOptions{})
	_, err := f.d.Dial(context.Background(), transport.Target{Name: "gone", Address: addr, Port: port, KeyFiles: []string{sshdtest.NewClientKey(t)}}, transport.DialOptions{})
	if !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if _, statErr := os.Stat(f.store.Path()); statErr == nil {
		t.Fatal("known_hosts written for a host never reached")
	}
}

func TestUnauthorisedKey(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{})
	target := s.Target()
	target.KeyFiles = []string{sshdtest.NewClientKey(t)}
	_, err := newFixture(t, DialerOptions{}).d.Dial(context.Background(), target, transport.DialOptions{})
	if !errors.Is(err, ErrAuth) || !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("err = %v, want ErrAuth and ErrUnreachable", err)
	}
	target.KeyFiles = []string{filepath.Join(t.TempDir(), "no-such-key")}
	_, err = newFixture(t, DialerOptions{}).d.Dial(context.Background(), target, transport.DialOptions{})
	if err == nil || errors.Is(err, transport.ErrUnreachable) || !strings.Contains(err.Error(), "no-such-key") {
		t.Fatalf("missing key file: %v", err)
	}
}

func TestUnknownHostIsRecorded(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{Name: "web1"})
	f := newFixture(t, DialerOptions{})
	c := f.dial(s)
	run(t, c, "true")
	want := knownhosts.Line([]string{net.JoinHostPort("web1", strconv.Itoa(s.Port))}, s.HostKeys()[0]) + "\n"
	if got := f.knownHosts(); got != want {
		t.Fatalf("known_hosts = %q, want %q", got, want)
	}
	if len(f.logs) != 1 || !strings.Contains(f.logs[0], s.HostKeyFingerprint()) {
		t.Fatalf("logs = %q", f.logs)
	}
	c.Close()
	f.dial(s)
	if got := f.knownHosts(); got != want {
		t.Fatalf("second dial changed known_hosts: %q", got)
	}
	if len(f.logs) != 1 {
		t.Fatalf("second dial logged: %q", f.logs)
	}
}

func TestChangedHostKey(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{Name: "db1"})
	f := newFixture(t, DialerOptions{})
	f.dial(s).Close()
	old := s.HostKeyFingerprint()
	s.RotateHostKey()

	_, err := f.d.Dial(context.Background(), s.Target(), f.dialOpts(false))
	var changed *hostkeys.ChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("err = %v, want *hostkeys.ChangedError", err)
	}
	if errors.Is(err, transport.ErrUnreachable) {
		t.Fatal("a changed key must not look unreachable (it would be retried)")
	}
	for _, want := range []string{"db1", old, s.HostKeyFingerprint(), "nixbook known-hosts forget db1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}

	// After a reinstall the new key replaces the old one.
	f.logs = nil
	c, err := f.d.Dial(context.Background(), s.Target(), f.dialOpts(true))
	if err != nil {
		t.Fatalf("new system: %v", err)
	}
	c.Close()
	if len(f.logs) != 1 || !strings.Contains(f.logs[0], old) || !strings.Contains(f.logs[0], s.HostKeyFingerprint()) {
		t.Fatalf("logs = %q, want old and new fingerprints", f.logs)
	}
	want := knownhosts.Line([]string{net.JoinHostPort("db1", strconv.Itoa(s.Port))}, s.HostKeys()[0]) + "\n"
	if got := f.knownHosts(); got != want {
		t.Fatalf("known_hosts = %q, want %q", got, want)
	}
	f.dial(s)
}

func TestForgetThenReconnect(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{Name: "app"})
	f := newFixture(t, DialerOptions{})
	f.dial(s).Close()
	s.RotateHostKey()
	if _, err := f.d.Dial(context.Background(), s.Target(), f.dialOpts(false)); err == nil {
		t.Fatal("rotated key accepted")
	}
	if n, err := f.store.Forget("app"); n != 1 || err != nil {
		t.Fatalf("Forget = %d, %v", n, err)
	}
	f.dial(s)
	entries, err := f.store.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Fingerprint != s.HostKeyFingerprint() || entries[0].Type != "ssh-ed25519" {
		t.Fatalf("entries = %+v", entries)
	}
}

func TestConcurrentFirstDials(t *testing.T) {
	t.Parallel()
	servers := sshdtest.StartFleet(t, 20, sshdtest.Options{})
	f := newFixture(t, DialerOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, len(servers))
	for _, s := range servers {
		wg.Go(func() {
			c, err := f.d.Dial(context.Background(), s.Target(), f.dialOpts(false))
			if err == nil {
				_, err = c.Run(context.Background(), transport.Cmd{Args: []string{"true"}})
				c.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	entries, err := f.store.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 20 {
		t.Fatalf("%d known_hosts lines, want 20", len(entries))
	}
	byHost := map[string]string{}
	for _, e := range entries {
		byHost[e.Host] = e.Fingerprint
	}
	for _, s := range servers {
		if got := byHost[knownhosts.Normalize(net.JoinHostPort(s.Name, strconv.Itoa(s.Port)))]; got != s.HostKeyFingerprint() {
			t.Errorf("%s recorded %q, want %s", s.Name, got, s.HostKeyFingerprint())
		}
	}
	if len(f.logs) != 20 {
		t.Errorf("%d log lines, want 20", len(f.logs))
	}
}

func TestHostKeyAlgorithmsFollowTheStore(t *testing.T) {
	t.Parallel()
	t.Run("first contact prefers ed25519", func(t *testing.T) {
		t.Parallel()
		// x/crypto alone would pick ECDSA here.
		s := sshdtest.Start(t, sshdtest.Options{HostKeyTypes: []string{"ecdsa", "ed25519"}})
		f := newFixture(t, DialerOptions{})
		f.dial(s)
		entries, _ := f.store.List()
		if len(entries) != 1 || entries[0].Type != "ssh-ed25519" {
			t.Fatalf("recorded %+v, want the ed25519 key", entries)
		}
	})
	t.Run("only the recorded type is offered", func(t *testing.T) {
		t.Parallel()
		s := sshdtest.Start(t, sshdtest.Options{HostKeyTypes: []string{"ed25519", "ecdsa"}})
		f := newFixture(t, DialerOptions{})
		// Recorded by someone who negotiated ECDSA: an ed25519 handshake
		// would now look like a changed key.
		if err := f.store.Check(s.Name, s.Port, s.HostKeys()[1], hostkeys.CheckOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := f.store.Algorithms(s.Name, s.Port); !slices.Equal(got, []string{gossh.KeyAlgoECDSA256}) {
			t.Fatalf("algorithms %q", got)
		}
		before := f.knownHosts()
		f.dial(s)
		if f.knownHosts() != before {
			t.Fatal("known_hosts changed")
		}
	})
	t.Run("recorded type gone", func(t *testing.T) {
		t.Parallel()
		s := sshdtest.Start(t, sshdtest.Options{HostKeyTypes: []string{"ed25519"}})
		other := sshdtest.Start(t, sshdtest.Options{HostKeyTypes: []string{"ecdsa"}})
		f := newFixture(t, DialerOptions{})
		if err := f.store.Check(s.Name, s.Port, other.HostKeys()[0], hostkeys.CheckOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := f.d.Dial(context.Background(), s.Target(), f.dialOpts(false))
		var changed *hostkeys.ChangedError
		if !errors.As(err, &changed) || !strings.Contains(err.Error(), s.HostKeyFingerprint()) {
			t.Fatalf("err = %v, want a changed key naming the new ed25519 key", err)
		}
		f.d.Dial(context.Background(), s.Target(), f.dialOpts(true))
		if got := f.store.Algorithms(s.Name, s.Port); !slices.Equal(got, []string{gossh.KeyAlgoED25519}) {
			t.Fatalf("after new system: %q", got)
		}
	})
}

func TestProxyJump(t *testing.T) {
	t.Parallel()
	key := sshdtest.NewClientKey(t)
	jump1 := sshdtest.Start(t, sshdtest.Options{Name: "jump1", ClientKeyFile: key})
	jump2 := sshdtest.Start(t, sshdtest.Options{Name: "jump2", ClientKeyFile: key})
	target := sshdtest.Start(t, sshdtest.Options{Name: "target", ClientKeyFile: key})
	// Proxies count the connections each server gets.
	p1, p2, pt := sshdtest.NewProxy(t, jump1.HostPort()), sshdtest.NewProxy(t, jump2.HostPort()), sshdtest.NewProxy(t, target.HostPort())
	config := fmt.Sprintf(`
Host target
    HostName %s
    Port %d
    ProxyJump bastion1,%s@bastion2:%d

Host bastion1
    HostName %s
    Port %d
    IdentityFile %s

Host bastion2
    HostName %s
`, pt.Addr, pt.Port, jump2.User, p2.Port, p1.Addr, p1.Port, key, p2.Addr)
	cfgPath := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, DialerOptions{SSHConfigPath: cfgPath, DefaultUser: target.User})
	c, err := f.d.Dial(context.Background(), transport.Target{Name: "target", KeyFiles: []string{key}}, f.dialOpts(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run(t, c, "true")
	if p1.Accepted() != 1 || p2.Accepted() != 1 || pt.Accepted() != 1 {
		t.Fatalf("connections: jump1 %d, jump2 %d, target %d; want 1 each", p1.Accepted(), p2.Accepted(), pt.Accepted())
	}
	entries, err := f.store.List()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range entries {
		got[e.Host] = e.Fingerprint
	}
	want := map[string]string{
		fmt.Sprintf("[bastion1]:%d", p1.Port): jump1.HostKeyFingerprint(),
		fmt.Sprintf("[bastion2]:%d", p2.Port): jump2.HostKeyFingerprint(),
		fmt.Sprintf("[target]:%d", pt.Port):   target.HostKeyFingerprint(),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("known hosts %v, want %v", got, want)
	}

	// Without its jump hosts the target is unreachable.
	jump1.Stop()
	_, err = f.d.Dial(context.Background(), transport.Target{Name: "target", KeyFiles: []string{key}}, f.dialOpts(false))
	if !errors.Is(err, transport.ErrUnreachable) || !strings.Contains(err.Error(), "bastion1") {
		t.Fatalf("err = %v, want bastion1 unreachable", err)
	}
}

func TestKeepAliveNoticesDeadHost(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{})
	p := sshdtest.NewProxy(t, s.HostPort())
	f := newFixture(t, DialerOptions{KeepAlive: 100 * time.Millisecond, KeepAliveMax: 3})
	target := s.Target()
	target.Address, target.Port = p.Addr, p.Port
	c, err := f.d.Dial(context.Background(), target, f.dialOpts(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(context.Background(), transport.Cmd{Args: []string{"sleep", "30"}})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // keepalives are answered meanwhile
	select {
	case err := <-done:
		t.Fatalf("Run ended while the host was fine: %v", err)
	default:
	}
	p.Freeze()
	start := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, transport.ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
		t.Logf("dead host noticed after %s: %v", time.Since(start), err)
	case <-time.After(3 * time.Second):
		t.Fatal("a vanished host hung Run")
	}
	_, err = c.Run(context.Background(), transport.Cmd{Args: []string{"true"}})
	if !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("next Run: %v", err)
	}
}

func TestLostConnection(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{})
	c := newFixture(t, DialerOptions{}).dial(s)
	run(t, c, "true")
	s.Stop() // kills the connection too, as a crash or reboot would
	_, err := c.Run(context.Background(), transport.Cmd{Args: []string{"true"}})
	if !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("Run after the host went away: %v", err)
	}
	err = c.Upload(context.Background(), "/tmp/x", strings.NewReader("x"), 0o644)
	if !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("Upload after the host went away: %v", err)
	}
}

func TestClosedConn(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{})
	c := newFixture(t, DialerOptions{}).dial(s)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err := c.Run(context.Background(), transport.Cmd{Args: []string{"true"}})
	if !errors.Is(err, net.ErrClosed) || errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("Run on a closed conn: %v", err)
	}
}

// One Conn carries every command and upload over a single TCP connection.
func TestOneConnectionForManyCommands(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{})
	p := sshdtest.NewProxy(t, s.HostPort())
	f := newFixture(t, DialerOptions{})
	target := s.Target()
	target.Address, target.Port = p.Addr, p.Port
	start := time.Now()
	c, err := f.d.Dial(context.Background(), target, f.dialOpts(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dialed := time.Since(start)
	start = time.Now()
	for i := range 10 {
		res := run(t, c, "echo", strconv.Itoa(i))
		if string(res.Stdout) != strconv.Itoa(i)+"\n" {
			t.Fatalf("command %d: %q", i, res.Stdout)
		}
	}
	ran := time.Since(start)
	dir := t.TempDir()
	for i := range 3 {
		if err := c.Upload(context.Background(), filepath.Join(dir, strconv.Itoa(i)), strings.NewReader("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if p.Accepted() != 1 {
		t.Fatalf("%d TCP connections, want 1", p.Accepted())
	}
	t.Logf("dial %s, 10 commands %s (%s each)", dialed, ran, ran/10)
}

// Keys come from a real ssh-agent; an encrypted key file the agent holds is
// skipped rather than failing the dial.
func TestAgentAuth(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	sock := startAgent(t, dir, s.KeyFile)

	raw, err := os.ReadFile(s.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := gossh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKeyWithPassphrase(key, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	encrypted := filepath.Join(dir, "encrypted_key")
	if err := os.WriteFile(encrypted, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Setenv("SSH_AUTH_SOCK", sock)
	t.Setenv("HOME", t.TempDir()) // no default keys to fall back on
	for _, keyFiles := range [][]string{nil, {encrypted}} {
		f := newFixture(t, DialerOptions{UseAgent: true})
		target := s.Target()
		target.KeyFiles = keyFiles
		c, err := f.d.Dial(context.Background(), target, transport.DialOptions{})
		if err != nil {
			t.Fatalf("key files %q: %v", keyFiles, err)
		}
		c.Close()
		if err := f.d.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// Without the agent neither works.
	f := newFixture(t, DialerOptions{})
	target := s.Target()
	target.KeyFiles = nil
	if _, err := f.d.Dial(context.Background(), target, transport.DialOptions{}); err == nil || errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("no keys at all: %v", err)
	}
	target.KeyFiles = []string{encrypted}
	if _, err := f.d.Dial(context.Background(), target, transport.DialOptions{}); err == nil || !strings.Contains(err.Error(), "encrypted_key") {
		t.Fatalf("encrypted key without agent: %v", err)
	}
}

func TestUploadCancelled(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		noSFTP bool
	}{{"sftp", false}, {"shell fallback", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := sshdtest.Start(t, sshdtest.Options{NoSFTP: tt.noSFTP})
			c := newFixture(t, DialerOptions{}).dial(s)
			dir := t.TempDir()
			dst := filepath.Join(dir, "file")
			// A source that sends a little and then stalls, like a slow download.
			pr, pw := io.Pipe()
			go pw.Write(bytes.Repeat([]byte("x"), 100_000))
			t.Cleanup(func() { pw.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- c.Upload(ctx, dst, pr, 0o644) }()
			select {
			case err := <-done:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want context.DeadlineExceeded", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("a stalled upload ignored its context")
			}
			// The temporary file goes away and dst never appeared.
			waitFor(t, 3*time.Second, func() bool {
				entries, _ := os.ReadDir(dir)
				return len(entries) == 0
			})
			// The connection still uploads.
			if err := c.Upload(context.Background(), dst, strings.NewReader("ok"), 0o644); err != nil {
				t.Fatalf("upload after a cancelled one: %v", err)
			}
			if b, _ := os.ReadFile(dst); string(b) != "ok" {
				t.Fatalf("content %q", b)
			}
		})
	}
}

func BenchmarkRun(b *testing.B) {
	s := sshdtest.Start(b, sshdtest.Options{})
	d := NewDialer(DialerOptions{Store: hostkeys.New(filepath.Join(b.TempDir(), "known_hosts")), SSHConfigPath: "none"})
	defer d.Close()
	c, err := d.Dial(context.Background(), s.Target(), transport.DialOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Run(context.Background(), transport.Cmd{Args: []string{"true"}}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDial(b *testing.B) {
	s := sshdtest.Start(b, sshdtest.Options{})
	d := NewDialer(DialerOptions{Store: hostkeys.New(filepath.Join(b.TempDir(), "known_hosts")), SSHConfigPath: "none"})
	defer d.Close()
	for b.Loop() {
		c, err := d.Dial(context.Background(), s.Target(), transport.DialOptions{})
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

func BenchmarkUpload(b *testing.B) {
	for _, noSFTP := range []bool{false, true} {
		b.Run(fmt.Sprintf("noSFTP=%v", noSFTP), func(b *testing.B) {
			s := sshdtest.Start(b, sshdtest.Options{NoSFTP: noSFTP})
			d := NewDialer(DialerOptions{Store: hostkeys.New(filepath.Join(b.TempDir(), "known_hosts")), SSHConfigPath: "none"})
			defer d.Close()
			c, err := d.Dial(context.Background(), s.Target(), transport.DialOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			data := bytes.Repeat([]byte("x"), 8<<20)
			dst := filepath.Join(b.TempDir(), "blob")
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := c.Upload(context.Background(), dst, bytes.NewReader(data), 0o644); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// startAgent runs a real ssh-agent holding keyFile, with its socket in dir,
// for the test's life; the test is skipped where there is no ssh-agent.
func startAgent(t *testing.T, dir, keyFile string) string {
	t.Helper()
	sock := filepath.Join(dir, "agent.sock")
	agentCmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agentCmd.Start(); err != nil {
		t.Skipf("no ssh-agent: %v", err)
	}
	t.Cleanup(func() {
		agentCmd.Process.Kill()
		agentCmd.Wait()
	})
	waitFor(t, 5*time.Second, func() bool { _, err := os.Stat(sock); return err == nil })
	add := exec.Command("ssh-add", keyFile)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	return sock
}

// lockedBuffer is a bytes.Buffer that a command's output goroutine may
// write while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// loginShellIsBash says whether this user's login shell, the one sshd runs
// commands with, is bash.
func loginShellIsBash(t *testing.T) bool {
	t.Helper()
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	uid := strconv.Itoa(os.Getuid())
	for _, line := range strings.Split(string(passwd), "\n") {
		if f := strings.Split(line, ":"); len(f) == 7 && f[2] == uid {
			return filepath.Base(f[6]) == "bash"
		}
	}
	t.Fatalf("uid %s is not in /etc/passwd", uid)
	return false
}
