// Package sshdtest starts real OpenSSH servers on loopback addresses for
// tests: one per simulated host, each with its own host key, reachable as
// root with a generated client key.
package sshdtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"

	"github.com/nixbook/nixbook/internal/apt"
	"github.com/nixbook/nixbook/internal/heavytest"
	"github.com/nixbook/nixbook/internal/proctree"
	"github.com/nixbook/nixbook/internal/transport"
)

// SSHD is the OpenSSH server binary the tests run.
const SSHD = "/usr/sbin/sshd"

// Options shape one server.
type Options struct {
	// Name is the inventory name; "h1" when empty. StartFleet numbers its
	// servers Name1..NameN ("h1".."hN").
	Name string
	// NoSFTP leaves out the sftp subsystem, like a minimal installer image.
	NoSFTP bool
	// HostKeyTypes are the host keys to generate: "ed25519" (the default),
	// "ecdsa", "rsa".
	HostKeyTypes []string
	// ClientKeyFile is a private key to authorise; generated when empty.
	ClientKeyFile string
	// Config holds extra sshd_config lines.
	Config []string
	// KeepShellRC lets the login shell read ~/.bashrc, as it does under sshd.
	// By default the file is hidden from the server (in a private mount
	// namespace) so that this machine's interactive setup does not slow
	// every command down.
	KeepShellRC bool
}

// Server is one running sshd.
type Server struct {
	Name    string
	Addr    string // loopback IP, e.g. 127.0.12.34
	Port    int
	User    string // the account the client key logs in as: root when tests run as root
	KeyFile string // client private key

	t        testing.TB
	dir      string
	opts     Options
	hostKeys []gossh.PublicKey

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *syncBuffer
}

// Start starts one server; it is stopped when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	ensureSSHD(t)
	if opts.Name == "" {
		opts.Name = "h1"
	}
	if opts.ClientKeyFile == "" {
		opts.ClientKeyFile = NewClientKey(t)
	}
	s, err := start(t, opts, pickAddr(mrand.IntN(250)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// StartFleet starts n servers named Name1..NameN that share one client key,
// on n distinct loopback addresses.
func StartFleet(t testing.TB, n int, opts Options) []*Server {
	t.Helper()
	ensureSSHD(t)
	prefix := opts.Name
	if prefix == "" {
		prefix = "h"
	}
	if opts.ClientKeyFile == "" {
		opts.ClientKeyFile = NewClientKey(t)
	}
	first := mrand.IntN(250)
	servers := make([]*Server, n)
	var g errgroup.Group
	g.SetLimit(8)
	for i := range n {
		o := opts
		o.Name = prefix + strconv.Itoa(i+1)
		g.Go(func() error {
			s, err := start(t, o, pickAddr(first+i))
			servers[i] = s
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return servers
}

// pickAddr returns a loopback IP 127.0.X.Y with X taken from the pid, so
// that test binaries running side by side mostly use different addresses;
// the port is picked free on top of that.
func pickAddr(i int) string {
	x := 1 + os.Getpid()%254
	x = 1 + (x-1+i/250)%254
	return fmt.Sprintf("127.0.%d.%d", x, 2+i%250)
}

func start(t testing.TB, opts Options, addr string) (*Server, error) {
	s := &Server{
		Name:    opts.Name,
		Addr:    addr,
		User:    currentUser(),
		KeyFile: opts.ClientKeyFile,
		t:       t,
		dir:     t.TempDir(),
		opts:    opts,
	}
	if err := s.writeKeys(); err != nil {
		return nil, err
	}
	t.Cleanup(s.Stop)
	var err error
	for range 5 {
		if s.Port, err = freePort(addr); err != nil {
			return nil, err
		}
		if err = s.launch(); err == nil || !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return s, err
}

// Start starts a stopped server again on the same address and port.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.launch(); err != nil {
		s.t.Fatal(err)
	}
}

// Stop kills the server and every process under it, open connections and
// the commands they run included, as if the host had gone away. The address
// then refuses connections.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	killTree(s.cmd.Process.Pid)
	<-s.exited
	s.cmd = nil
}

// RotateHostKey restarts the server with new host keys of the same types,
// as a reinstall would.
func (s *Server) RotateHostKey() {
	s.t.Helper()
	s.Stop()
	if err := s.writeHostKeys(); err != nil {
		s.t.Fatal(err)
	}
	s.Start()
}

// StartCertified starts a server whose first host key is certified for
// principals by a new host CA, valid from an hour ago for a day; it returns
// the server and the CA's public key.
func StartCertified(t testing.TB, opts Options, principals ...string) (*Server, gossh.PublicKey) {
	t.Helper()
	certPath := filepath.Join(t.TempDir(), "host-cert.pub")
	opts.Config = append(append([]string{}, opts.Config...), "HostCertificate "+certPath)
	s := Start(t, opts)
	_, caKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := gossh.NewSignerFromKey(caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert := &gossh.Certificate{Key: s.HostKeys()[0], CertType: gossh.HostCert, ValidPrincipals: principals,
		ValidAfter: uint64(time.Now().Add(-time.Hour).Unix()), ValidBefore: uint64(time.Now().Add(24 * time.Hour).Unix())}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, gossh.MarshalAuthorizedKey(cert), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Stop() // sshd reads its certificate when it starts
	s.Start()
	return s, ca.PublicKey()
}

// HostKeyFingerprint is the SHA256 fingerprint of the first host key.
func (s *Server) HostKeyFingerprint() string {
	return gossh.FingerprintSHA256(s.hostKeys[0])
}

// HostKeys are the server's public host keys, in Options.HostKeyTypes order.
func (s *Server) HostKeys() []gossh.PublicKey { return s.hostKeys }

// HostPort is Addr:Port.
func (s *Server) HostPort() string { return net.JoinHostPort(s.Addr, strconv.Itoa(s.Port)) }

// Target is how a dialler reaches this server.
func (s *Server) Target() transport.Target {
	return transport.Target{Name: s.Name, Address: s.Addr, Port: s.Port, User: s.User, KeyFiles: []string{s.KeyFile}}
}

// Dir is the server's scratch directory (config, keys).
func (s *Server) Dir() string { return s.dir }

// Log is what sshd has written to stderr so far.
func (s *Server) Log() string { return s.log.String() }

func (s *Server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("sshd %s is already running", s.Name)
	}
	cfg := filepath.Join(s.dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(s.config()), 0o600); err != nil {
		return err
	}
	s.log = &syncBuffer{}
	cmd := exec.Command(SSHD, "-D", "-e", "-f", cfg)
	if rc := s.shellRC(); rc != "" {
		empty := filepath.Join(s.dir, "empty_rc")
		if err := os.WriteFile(empty, nil, 0o644); err != nil {
			return err
		}
		// Each exec keeps the pid, so the recorded pid is sshd's.
		cmd = exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
			`mount --bind "$1" "$2" && shift 2 && exec "$@"`, "sh", empty, rc, SSHD, "-D", "-e", "-f", cfg)
	}
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting sshd: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	if err := waitReady(s.HostPort(), exited); err != nil {
		killTree(cmd.Process.Pid)
		<-exited
		s.cmd = nil
		return fmt.Errorf("sshd %s on %s: %w: %s", s.Name, s.HostPort(), err, strings.TrimSpace(s.log.String()))
	}
	return nil
}

// shellRC is the ~/.bashrc to hide from the server, or "" when there is
// none or it cannot be hidden.
func (s *Server) shellRC() string {
	if s.opts.KeepShellRC || os.Geteuid() != 0 {
		return ""
	}
	u, err := user.Current()
	if err != nil {
		return ""
	}
	rc := filepath.Join(u.HomeDir, ".bashrc")
	if fi, err := os.Stat(rc); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	if exec.Command("unshare", "--mount", "--propagation", "private", "true").Run() != nil {
		return ""
	}
	return rc
}

// waitReady waits for the SSH banner: sshd listens only once its keys are
// loaded, and it greets only once it accepts.
func waitReady(hostPort string, exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("sshd exited")
		default:
		}
		c, err := net.DialTimeout("tcp", hostPort, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "SSH-") {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return errors.New("not ready after 10s")
}

func (s *Server) config() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("ListenAddress %s", s.HostPort())
	line("AddressFamily inet")
	for i := range s.hostKeys {
		line("HostKey %s", filepath.Join(s.dir, fmt.Sprintf("host_key_%d", i)))
	}
	line("AuthorizedKeysFile %s", filepath.Join(s.dir, "authorized_keys"))
	line("PidFile none")
	line("StrictModes no")
	line("UsePAM no")
	line("PermitRootLogin prohibit-password")
	line("PubkeyAuthentication yes")
	line("PasswordAuthentication no")
	line("KbdInteractiveAuthentication no")
	line("MaxSessions 100")
	line("MaxStartups 200:30:400")
	line("MaxAuthTries 20")
	line("LogLevel ERROR")
	line("UseDNS no")
	line("PrintMotd no")
	line("PrintLastLog no")
	line("AllowTcpForwarding yes")
	line("X11Forwarding no")
	line("LoginGraceTime 30")
	if !s.opts.NoSFTP {
		line("Subsystem sftp internal-sftp")
	}
	for _, l := range s.opts.Config {
		line("%s", l)
	}
	return b.String()
}

func (s *Server) writeKeys() error {
	pub, err := publicKeyOfFile(s.KeyFile)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.dir, "authorized_keys"), gossh.MarshalAuthorizedKey(pub), 0o600); err != nil {
		return err
	}
	return s.writeHostKeys()
}

func (s *Server) writeHostKeys() error {
	types := s.opts.HostKeyTypes
	if len(types) == 0 {
		types = []string{"ed25519"}
	}
	s.hostKeys = nil
	for i, typ := range types {
		pemBytes, pub, err := generateKey(typ)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("host_key_%d", i)), pemBytes, 0o600); err != nil {
			return err
		}
		s.hostKeys = append(s.hostKeys, pub)
	}
	return nil
}

// NewClientKey writes a fresh ed25519 private key (OpenSSH format) into a
// temporary directory and returns its path.
func NewClientKey(t testing.TB) string {
	t.Helper()
	pemBytes, pub, err := generateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", gossh.MarshalAuthorizedKey(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func generateKey(typ string) ([]byte, gossh.PublicKey, error) {
	var priv any
	var err error
	switch typ {
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, nil, fmt.Errorf("unknown key type %q", typ)
	}
	if err != nil {
		return nil, nil, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, nil, err
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(block), signer.PublicKey(), nil
}

func publicKeyOfFile(path string) (gossh.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	signer, err := gossh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return signer.PublicKey(), nil
}

func freePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}

// ensureSSHD installs OpenSSH's server when it is missing and the tests run
// as root, and makes sure its privilege separation directory exists.
func ensureSSHD(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(SSHD); err != nil {
		if os.Geteuid() != 0 {
			t.Fatalf("%s is missing: install openssh-server (apt-get install openssh-server) or run the tests as root", SSHD)
		}
		heavytest.Require(t, "openssh-server, installed with apt")
		if err := apt.Install(context.Background(), "openssh-server"); err != nil {
			t.Fatalf("installing openssh-server: %v", err)
		}
	}
	if os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// killTree stops pid and all its descendants, then kills them. Stopping
// first keeps new children from slipping out while the tree is collected.
func killTree(pid int) {
	seen := map[int]bool{pid: true}
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	for {
		grew := false
		for child, parent := range proctree.Parents() {
			if seen[parent] && !seen[child] {
				seen[child] = true
				grew = true
				_ = syscall.Kill(child, syscall.SIGSTOP)
			}
		}
		if !grew {
			break
		}
	}
	for p := range seen {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
