package hostkeys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func newKey(t testing.TB, typ string) gossh.PublicKey {
	t.Helper()
	var pub any
	switch typ {
	case "ed25519":
		p, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub = p
	case "ecdsa":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub = &k.PublicKey
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		pub = &k.PublicKey
	default:
		t.Fatalf("unknown key type %q", typ)
	}
	k, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newStore(t *testing.T) *Store {
	return New(filepath.Join(t.TempDir(), "state", "nixbook", "known_hosts"))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUnknownHostIsRecorded(t *testing.T) {
	s := newStore(t)
	key := newKey(t, "ed25519")
	var logs []string
	opts := CheckOptions{Log: func(l string) { logs = append(logs, l) }}

	if err := s.Check("web1", 2222, key, opts); err != nil {
		t.Fatalf("first check: %v", err)
	}
	want := knownhosts.Line([]string{"[web1]:2222"}, key) + "\n"
	if got := readFile(t, s.Path()); got != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
	if len(logs) != 1 || !strings.Contains(logs[0], gossh.FingerprintSHA256(key)) || !strings.Contains(logs[0], "web1") {
		t.Fatalf("logs = %q, want one line with host and fingerprint", logs)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(s.Path()))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %v, want 0700", di.Mode().Perm())
	}

	// Known now: accepted again without a new line or a log line.
	if err := s.Check("web1", 2222, key, opts); err != nil {
		t.Fatalf("second check: %v", err)
	}
	if got := readFile(t, s.Path()); got != want {
		t.Fatalf("file after second check = %q", got)
	}
	if len(logs) != 1 {
		t.Fatalf("logged again: %q", logs)
	}
	// The same name on another port is another host.
	if err := s.Check("web1", 22, newKey(t, "ed25519"), opts); err != nil {
		t.Fatalf("port 22: %v", err)
	}
	if n := strings.Count(readFile(t, s.Path()), "\n"); n != 2 {
		t.Fatalf("lines = %d, want 2", n)
	}
}

func TestChangedKeyIsRefused(t *testing.T) {
	s := newStore(t)
	old, offered := newKey(t, "ed25519"), newKey(t, "ed25519")
	if err := s.Check("db1", 22, old, CheckOptions{}); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, s.Path())

	err := s.Check("db1", 22, offered, CheckOptions{})
	var changed *ChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("err = %v, want *ChangedError", err)
	}
	for _, want := range []string{"db1", gossh.FingerprintSHA256(old), gossh.FingerprintSHA256(offered), "nixbook known-hosts forget db1", s.Path()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if got := readFile(t, s.Path()); got != before {
		t.Fatalf("file changed on refusal: %q", got)
	}
}

func TestNewSystemReplacesKey(t *testing.T) {
	s := newStore(t)
	old, fresh, other := newKey(t, "ed25519"), newKey(t, "ecdsa"), newKey(t, "ed25519")
	for _, c := range []struct {
		name string
		key  gossh.PublicKey
	}{{"h1", old}, {"h2", other}} {
		if err := s.Check(c.name, 22, c.key, CheckOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A comment and an old IP-and-name line written by hand survive or go as
	// they should.
	f, err := os.OpenFile(s.Path(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "# kept\n%s\n", knownhosts.Line([]string{"h1", "10.0.0.1"}, old))
	f.Close()

	var logs []string
	err = s.Check("h1", 22, fresh, CheckOptions{NewSystem: true, Log: func(l string) { logs = append(logs, l) }})
	if err != nil {
		t.Fatalf("new system: %v", err)
	}
	want := knownhosts.Line([]string{"h2"}, other) + "\n# kept\n" + knownhosts.Line([]string{"h1"}, fresh) + "\n"
	if got := readFile(t, s.Path()); got != want {
		t.Fatalf("file =\n%s\nwant\n%s", got, want)
	}
	if len(logs) != 1 || !strings.Contains(logs[0], gossh.FingerprintSHA256(old)) || !strings.Contains(logs[0], gossh.FingerprintSHA256(fresh)) {
		t.Fatalf("logs = %q, want old and new fingerprints", logs)
	}
	if err := s.Check("h1", 22, fresh, CheckOptions{}); err != nil {
		t.Fatalf("after replacement: %v", err)
	}
}

func TestAlgorithms(t *testing.T) {
	s := newStore(t)
	for _, c := range []struct {
		name  string
		types []string
	}{
		{"ed", []string{"ed25519"}},
		{"ec", []string{"ecdsa"}},
		{"rsa", []string{"rsa"}},
		{"mixed", []string{"rsa", "ecdsa", "ed25519"}},
	} {
		for _, typ := range c.types {
			// Each extra type goes in as its own line, as OpenSSH would add it.
			unlock, err := s.lock()
			if err != nil {
				t.Fatal(err)
			}
			data, _ := s.read()
			if err := s.write(appendLine(data, knownhosts.Line([]string{c.name}, newKey(t, typ)))); err != nil {
				t.Fatal(err)
			}
			unlock()
		}
	}
	tests := []struct {
		name string
		want []string
	}{
		{"ed", []string{"ssh-ed25519"}},
		{"ec", []string{"ecdsa-sha2-nistp256"}},
		{"rsa", []string{"rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"}},
		{"mixed", []string{"ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"}},
		{"unknown", nil},
	}
	for _, tt := range tests {
		if got := s.Algorithms(tt.name, 22); !slices.Equal(got, tt.want) {
			t.Errorf("Algorithms(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := New(filepath.Join(t.TempDir(), "missing")).Algorithms("ed", 22); got != nil {
		t.Errorf("missing file: %q", got)
	}
}

func TestListAndForget(t *testing.T) {
	s := newStore(t)
	keys := map[string]gossh.PublicKey{}
	for _, hp := range []struct {
		name string
		port int
	}{{"a", 22}, {"a", 2222}, {"b", 22}, {"ab", 22}} {
		k := newKey(t, "ed25519")
		keys[hostPort(hp.name, hp.port)] = k
		if err := s.Check(hp.name, hp.port, k, CheckOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	hashedKey := newKey(t, "ecdsa")
	f, err := os.OpenFile(s.Path(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "# comment\n%s\n", knownhosts.Line([]string{knownhosts.HashHostname("[a]:2222")}, hashedKey))
	f.Close()

	entries, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, e := range entries {
		hosts = append(hosts, e.Host)
	}
	if want := []string{"a", "[a]:2222", "b", "ab"}; !slices.Equal(hosts[:4], want) || len(entries) != 5 {
		t.Fatalf("hosts = %q", hosts)
	}
	if e := entries[1]; e.Type != "ssh-ed25519" || e.Fingerprint != gossh.FingerprintSHA256(keys["a:2222"]) {
		t.Fatalf("entry = %+v", e)
	}
	if e := entries[4]; !strings.HasPrefix(e.Host, "|1|") || e.Type != "ecdsa-sha2-nistp256" {
		t.Fatalf("hashed entry = %+v", e)
	}

	n, err := s.Forget("a")
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("forgot %d lines, want 3 (both ports and the hashed one)", n)
	}
	want := knownhosts.Line([]string{"b"}, keys["b:22"]) + "\n" + knownhosts.Line([]string{"ab"}, keys["ab:22"]) + "\n# comment\n"
	if got := readFile(t, s.Path()); got != want {
		t.Fatalf("file =\n%s\nwant\n%s", got, want)
	}
	if n, err := s.Forget("nobody"); n != 0 || err != nil {
		t.Fatalf("Forget(nobody) = %d, %v", n, err)
	}
	// Forgotten hosts are new again.
	if err := s.Check("a", 22, newKey(t, "ed25519"), CheckOptions{}); err != nil {
		t.Fatalf("after forget: %v", err)
	}
}

func TestForgetOnePort(t *testing.T) {
	s := newStore(t)
	for _, port := range []int{22, 2222} {
		if err := s.Check("a", port, newKey(t, "ed25519"), CheckOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Forget("a:2222"); n != 1 || err != nil {
		t.Fatalf("Forget(a:2222) = %d, %v", n, err)
	}
	if got := s.Algorithms("a", 22); got == nil {
		t.Fatal("port 22 entry was removed too")
	}
}

// Many goroutines on two stores over one file, as two processes would be.
func TestConcurrentFirstUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_hosts")
	stores := []*Store{New(path), New(path)}
	shared := newKey(t, "ed25519")
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 40 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- stores[i%2].Check(fmt.Sprintf("h%d", i), 22, newKey(t, "ed25519"), CheckOptions{})
		}()
		go func() {
			defer wg.Done()
			errs <- stores[i%2].Check("same", 22, shared, CheckOptions{})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(readFile(t, path)), "\n")
	if len(lines) != 41 {
		t.Fatalf("lines = %d, want 41", len(lines))
	}
	entries, err := stores[0].List()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.Host] {
			t.Fatalf("duplicate line for %s", e.Host)
		}
		seen[e.Host] = true
	}
}

// Several processes record hosts in one file at once.
func TestConcurrentProcesses(t *testing.T) {
	if os.Getenv("HOSTKEYS_TEST_WRITER") != "" {
		return
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	const procs, perProc = 4, 25
	var cmds []*exec.Cmd
	for p := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriterProcess$")
		cmd.Env = append(os.Environ(), "HOSTKEYS_TEST_WRITER="+path, "HOSTKEYS_TEST_PREFIX=p"+strconv.Itoa(p), "HOSTKEYS_TEST_COUNT="+strconv.Itoa(perProc))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("writer process: %v", err)
		}
	}
	entries, err := New(path).List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != procs*perProc {
		t.Fatalf("entries = %d, want %d", len(entries), procs*perProc)
	}
}

// TestWriterProcess is the child of TestConcurrentProcesses.
func TestWriterProcess(t *testing.T) {
	path := os.Getenv("HOSTKEYS_TEST_WRITER")
	if path == "" {
		t.Skip("only run as a child of TestConcurrentProcesses")
	}
	n, _ := strconv.Atoi(os.Getenv("HOSTKEYS_TEST_COUNT"))
	s := New(path)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.Check(fmt.Sprintf("%s-%d", os.Getenv("HOSTKEYS_TEST_PREFIX"), i), 22, newKey(t, "ed25519"), CheckOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/state")
	if got := DefaultPath(); got != "/state/nixbook/known_hosts" {
		t.Errorf("with XDG_STATE_HOME: %s", got)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got := DefaultPath(); got != "/home/u/.local/state/nixbook/known_hosts" {
		t.Errorf("without XDG_STATE_HOME: %s", got)
	}
}

func TestBrokenFileIsReported(t *testing.T) {
	s := newStore(t)
	if err := os.MkdirAll(filepath.Dir(s.Path()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Path(), []byte("h1 ssh-ed25519 notbase64!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Check("h1", 22, newKey(t, "ed25519"), CheckOptions{}); err == nil {
		t.Fatal("broken file accepted")
	}
}
