package ssh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/nixbook/nixbook/internal/sshdtest"
	"github.com/nixbook/nixbook/internal/transport"
)

// TestMain lets the test binary stand in for netcat in ProxyCommand tests:
// SSHTEST_NETCAT=logfile test.binary host port.
func TestMain(m *testing.M) {
	if log := os.Getenv("SSHTEST_NETCAT"); log != "" {
		os.Exit(netcat(log, os.Args[1], os.Args[2]))
	}
	os.Exit(m.Run())
}

func netcat(log, host, port string) int {
	f, err := os.OpenFile(log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err == nil {
		fmt.Fprintf(f, "%s %s\n", host, port)
		f.Close()
	}
	c, err := net.Dial("tcp", net.JoinHostPort(host, port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		io.Copy(c, os.Stdin)
		c.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(os.Stdout, c)
	return 0
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func needSSH(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh client")
	}
}

// TestSSHConfigLikeSSH dials real servers through ssh configs that only
// `ssh -G` reads right: Match blocks, Include, ProxyCommand, ConnectTimeout.
func TestSSHConfigLikeSSH(t *testing.T) {
	t.Parallel()
	needSSH(t)
	s := sshdtest.Start(t, sshdtest.Options{})
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	include := filepath.Join(dir, "included")
	if err := os.WriteFile(include, []byte(fmt.Sprintf("Host inc\n  HostName %s\n  Port %d\n", s.Addr, s.Port)), 0o600); err != nil {
		t.Fatal(err)
	}
	ncLog := filepath.Join(dir, "nc.log")
	blackAddr, blackPort := sshdtest.Blackhole(t)
	cases := []struct {
		name   string
		config string
		target string
		want   string // "" connects
		within time.Duration
	}{
		{name: "Match", target: "matched", config: fmt.Sprintf("Match host matched exec true\n  HostName %s\n  Port %d\n", s.Addr, s.Port)},
		{name: "Include", target: "inc", config: "Include " + include + "\n"},
		{name: "ProxyCommand", target: "pc", config: fmt.Sprintf("Host pc\n  HostName %s\n  Port %d\n  ProxyCommand env SSHTEST_NETCAT=%s %s %%h %%p\n", s.Addr, s.Port, ncLog, bin)},
		{name: "failing ProxyCommand", target: "pcfail", config: "Host pcfail\n  ProxyCommand sh -c 'echo no route to pcfail >&2; exit 1'\n", want: "no route to pcfail"},
		{name: "ConnectTimeout", target: "slow", config: fmt.Sprintf("Host slow\n  HostName %s\n  Port %d\n  ConnectTimeout 1\n", blackAddr, blackPort), want: "no answer within 1s", within: 5 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, DialerOptions{SSHConfigPath: writeConfig(t, c.config), DefaultUser: s.User})
			start := time.Now()
			conn, err := f.d.DialSSH(context.Background(), transport.Target{Name: c.target, KeyFiles: []string{s.KeyFile}}, f.dialOpts(false))
			if c.want == "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				if got := strings.TrimSpace(string(run(t, conn, "echo", "hi").Stdout)); got != "hi" {
					t.Fatalf("echo: %q", got)
				}
				conn.Close()
			} else if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one saying %q", err, c.want)
			}
			if c.within > 0 && time.Since(start) > c.within {
				t.Fatalf("took %s", time.Since(start))
			}
		})
	}
	if b, _ := os.ReadFile(ncLog); string(b) != fmt.Sprintf("%s %d\n", s.Addr, s.Port) {
		t.Fatalf("ProxyCommand ran with %q", b)
	}
	// DialHost stays the HostName, through a ProxyCommand too.
	d := NewDialer(DialerOptions{SSHConfigPath: writeConfig(t, fmt.Sprintf("Host pc\n  HostName %s\n  ProxyCommand false\n", s.Addr))})
	if h, err := d.DialHost(transport.Target{Name: "pc"}); err != nil || h != s.Addr {
		t.Fatalf("DialHost = %q, %v", h, err)
	}
}

// TestKeysLikeSSH: IdentitiesOnly, CertificateFile and keys protected by a
// passphrase.
func TestKeysLikeSSH(t *testing.T) {
	t.Parallel()
	needSSH(t)
	dir := t.TempDir()
	_, caPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := gossh.NewSignerFromKey(caPriv)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "user_ca.pub")
	if err := os.WriteFile(caFile, gossh.MarshalAuthorizedKey(ca.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	s := sshdtest.Start(t, sshdtest.Options{Config: []string{"TrustedUserCAKeys " + caFile}})

	// A key the server does not list, with a certificate from its CA.
	certKey := sshdtest.NewClientKey(t)
	signer := loadSigner(t, certKey)
	cert := &gossh.Certificate{Key: signer.PublicKey(), CertType: gossh.UserCert, ValidPrincipals: []string{s.User},
		ValidAfter: uint64(time.Now().Add(-time.Hour).Unix()), ValidBefore: uint64(time.Now().Add(time.Hour).Unix())}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "user-cert.pub")
	if err := os.WriteFile(certFile, gossh.MarshalAuthorizedKey(cert), 0o600); err != nil {
		t.Fatal(err)
	}
	// The server's own key, protected by a passphrase.
	raw, err := gossh.ParseRawPrivateKey(mustRead(t, s.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKeyWithPassphrase(raw, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "locked_key")
	if err := os.WriteFile(locked, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	host := fmt.Sprintf("Host t\n  HostName %s\n  Port %d\n", s.Addr, s.Port)
	asked := 0
	ask := func(string) ([]byte, error) { asked++; return []byte("secret"), nil }
	cases := []struct {
		name     string
		config   string
		keys     []string
		prompt   func(string) ([]byte, error)
		want     string
		wantAsks int
	}{
		{name: "CertificateFile", config: host + "  IdentityFile " + certKey + "\n  CertificateFile " + certFile + "\n"},
		{name: "identity's -cert.pub", config: host + "  IdentityFile " + certKey + "\n", keys: nil, want: "authentication failed"},
		{name: "without the certificate", config: host + "  IdentityFile " + certKey + "\n", want: "authentication failed"},
		{name: "passphrase asked", config: host, keys: []string{locked}, prompt: ask, wantAsks: 1},
		{name: "passphrase and no terminal", config: host, keys: []string{locked}, want: "protected by a passphrase and there is no terminal"},
		{name: "wrong passphrase", config: host, keys: []string{locked}, prompt: func(string) ([]byte, error) { return []byte("nope"), nil }, want: "wrong passphrase"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			asked = 0
			if c.name == "identity's -cert.pub" {
				// OpenSSH's convention: KEY-cert.pub beside KEY.
				if err := os.WriteFile(certKey+"-cert.pub", gossh.MarshalAuthorizedKey(cert), 0o600); err != nil {
					t.Fatal(err)
				}
				defer os.Remove(certKey + "-cert.pub")
				c.want = ""
			}
			f := newFixture(t, DialerOptions{SSHConfigPath: writeConfig(t, c.config), DefaultUser: s.User, Passphrase: c.prompt})
			conn, err := f.d.DialSSH(context.Background(), transport.Target{Name: "t", KeyFiles: c.keys}, f.dialOpts(false))
			if c.want == "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				conn.Close()
			} else if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one saying %q", err, c.want)
			}
			if asked != c.wantAsks {
				t.Fatalf("asked %d times, want %d", asked, c.wantAsks)
			}
		})
	}
}

// TestIdentitiesOnly: the agent offers only the identity files' keys.
func TestIdentitiesOnly(t *testing.T) {
	needSSH(t)
	s := sshdtest.Start(t, sshdtest.Options{})
	dir := t.TempDir()
	sock := startAgent(t, dir, s.KeyFile)
	t.Setenv("SSH_AUTH_SOCK", sock)
	t.Setenv("HOME", t.TempDir())
	other := sshdtest.NewClientKey(t)
	host := fmt.Sprintf("Host t\n  HostName %s\n  Port %d\n  IdentityFile %s\n", s.Addr, s.Port, other)
	for _, c := range []struct {
		config string
		ok     bool
	}{
		{host, true},
		{host + "  IdentitiesOnly yes\n", false},
	} {
		f := newFixture(t, DialerOptions{SSHConfigPath: writeConfig(t, c.config), DefaultUser: s.User, UseAgent: true})
		conn, err := f.d.DialSSH(context.Background(), transport.Target{Name: "t"}, f.dialOpts(false))
		if c.ok != (err == nil) {
			t.Fatalf("%q: err = %v, want ok %v", c.config, err, c.ok)
		}
		if err == nil {
			conn.Close()
		} else if !errors.Is(err, ErrAuth) {
			t.Fatalf("err = %v, want ErrAuth", err)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadSigner(t *testing.T, p string) gossh.Signer {
	t.Helper()
	s, err := gossh.ParsePrivateKey(mustRead(t, p))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDialAtAnotherAddress: a dial at another of the host's addresses
// (DialOptions.Address) still takes its Port, User and keys from the host's
// own block in the ssh config, and checks its key as the host's: the
// user's known_hosts entry for its HostName (or HostKeyAlias), nixbook's
// store under its inventory name.
func TestDialAtAnotherAddress(t *testing.T) {
	t.Parallel()
	s := sshdtest.Start(t, sshdtest.Options{})
	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := gossh.NewPublicKey(other)
	if err != nil {
		t.Fatal(err)
	}
	real := s.HostKeys()[0]
	// ks1.invalid never resolves: only the other address can answer.
	original := fmt.Sprintf("[ks1.invalid]:%d", s.Port)
	cases := []struct {
		name     string
		extra    string // more lines in ks1's block
		userFile string
		want     string // "" connects; else a substring of the error
	}{
		{name: "the host's own entry", userFile: knownhosts.Line([]string{original}, real)},
		{name: "the host's own entry, another key", userFile: knownhosts.Line([]string{original}, otherKey), want: "REMOTE HOST IDENTIFICATION HAS CHANGED"},
		{name: "HostKeyAlias", extra: "  HostKeyAlias web1\n", userFile: knownhosts.Line([]string{"web1"}, real)},
		{name: "HostKeyAlias, another key", extra: "  HostKeyAlias web1\n", userFile: knownhosts.Line([]string{"web1"}, otherKey), want: "REMOTE HOST IDENTIFICATION HAS CHANGED"},
		{name: "no entry for the other address", userFile: knownhosts.Line([]string{s.HostPort()}, real), want: "StrictHostKeyChecking"},
	}
	for _, c := range cases {
		for _, bin := range []string{"", "none"} {
			t.Run(fmt.Sprintf("%s/ssh %q", c.name, bin), func(t *testing.T) {
				if bin == "" {
					needSSH(t)
				}
				dir := t.TempDir()
				userFile := filepath.Join(dir, "known_hosts")
				if err := os.WriteFile(userFile, []byte(c.userFile), 0o600); err != nil {
					t.Fatal(err)
				}
				config := fmt.Sprintf("Host ks1\n  HostName ks1.invalid\n  Port %d\n  User %s\n  IdentityFile %s\n  UserKnownHostsFile %s\n  GlobalKnownHostsFile none\n  StrictHostKeyChecking yes\n%s",
					s.Port, s.User, s.KeyFile, userFile, c.extra)
				f := newFixture(t, DialerOptions{SSHConfigPath: writeConfig(t, config), SSHBinary: bin})
				opts := f.dialOpts(false)
				opts.Address = s.Addr
				conn, err := f.d.DialSSH(context.Background(), transport.Target{Name: "ks1", Address: "ks1"}, opts)
				if c.want != "" {
					if err == nil || !strings.Contains(err.Error(), c.want) {
						t.Fatalf("err = %v, want one saying %q", err, c.want)
					}
					return
				}
				if err != nil {
					t.Fatalf("dial: %v\n%s", err, s.Log())
				}
				conn.Close()
				entries, _ := f.store.List()
				if len(entries) != 1 || entries[0].Host != fmt.Sprintf("[ks1]:%d", s.Port) {
					t.Fatalf("nixbook's store: %+v, want the key under ks1", entries)
				}
			})
		}
	}
}
