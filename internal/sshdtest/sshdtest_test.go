package sshdtest

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"

	"github.com/nixbook/nixbook/internal/heavytest"
)

// dial connects with x/crypto directly and returns the host key it saw.
func dial(t *testing.T, hostPort, keyFile string) (*gossh.Client, gossh.PublicKey, error) {
	t.Helper()
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	var seen gossh.PublicKey
	c, err := gossh.Dial("tcp", hostPort, &gossh.ClientConfig{
		User: currentUser(),
		Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key gossh.PublicKey) error {
			seen = key
			return nil
		},
		Timeout: 5 * time.Second,
	})
	return c, seen, err
}

func output(t *testing.T, c *gossh.Client, cmd string) string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("%s: %v: %s", cmd, err, out)
	}
	return string(out)
}

func TestStartStopRotate(t *testing.T) {
	s := Start(t, Options{Name: "web"})
	if !strings.HasPrefix(s.Addr, "127.0.") || s.Addr == "127.0.0.1" || s.Port == 0 {
		t.Fatalf("address %s:%d", s.Addr, s.Port)
	}
	c, key, err := dial(t, s.HostPort(), s.KeyFile)
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, s.Log())
	}
	if got := gossh.FingerprintSHA256(key); got != s.HostKeyFingerprint() {
		t.Fatalf("fingerprint %s, want %s", got, s.HostKeyFingerprint())
	}
	if got := strings.TrimSpace(output(t, c, "id -un")); got != s.User {
		t.Fatalf("logged in as %q, want %q", got, s.User)
	}
	c.Close()

	s.Stop()
	if _, err := net.DialTimeout("tcp", s.HostPort(), time.Second); err == nil {
		t.Fatal("stopped server still accepts connections")
	}
	s.Start()
	_, key, err = dial(t, s.HostPort(), s.KeyFile)
	if err != nil {
		t.Fatalf("dial after restart: %v", err)
	}
	if gossh.FingerprintSHA256(key) != s.HostKeyFingerprint() {
		t.Fatal("restart changed the host key")
	}

	before := s.HostKeyFingerprint()
	s.RotateHostKey()
	_, key, err = dial(t, s.HostPort(), s.KeyFile)
	if err != nil {
		t.Fatalf("dial after rotation: %v", err)
	}
	if got := gossh.FingerprintSHA256(key); got == before || got != s.HostKeyFingerprint() {
		t.Fatalf("after rotation saw %s; old %s, new %s", got, before, s.HostKeyFingerprint())
	}
}

func TestStopKillsRunningCommands(t *testing.T) {
	s := Start(t, Options{})
	c, _, err := dial(t, s.HostPort(), s.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	marker := strconv.Itoa(40000 + os.Getpid()%20000)
	if err := sess.Start("sleep " + marker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return sleeping(marker) })
	s.Stop()
	waitFor(t, func() bool { return !sleeping(marker) })
}

func sleeping(arg string) bool {
	want := []byte("sleep\x00" + arg + "\x00")
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Equal(b, want) {
			stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			// A zombie is dead already.
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && bytes.HasPrefix(stat[i:], []byte(") Z")) {
				continue
			}
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

func TestFleetAndInventory(t *testing.T) {
	servers := StartFleet(t, 5, Options{})
	addrs := map[string]bool{}
	for i, s := range servers {
		if want := "h" + strconv.Itoa(i+1); s.Name != want {
			t.Errorf("name %s, want %s", s.Name, want)
		}
		if addrs[s.Addr] {
			t.Errorf("address %s used twice", s.Addr)
		}
		addrs[s.Addr] = true
		if s.KeyFile != servers[0].KeyFile {
			t.Error("fleet servers do not share the client key")
		}
		c, _, err := dial(t, s.HostPort(), s.KeyFile)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		c.Close()
	}

	path := WriteInventory(t, t.TempDir(), servers)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var inv struct {
		All struct {
			Vars  map[string]string
			Hosts map[string]struct {
				Host string
				Port int
			}
		}
	}
	if err := yaml.Unmarshal(raw, &inv); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if inv.All.Vars["user"] != servers[0].User || inv.All.Vars["ssh_key"] != servers[0].KeyFile {
		t.Errorf("vars = %v", inv.All.Vars)
	}
	for _, s := range servers {
		h := inv.All.Hosts[s.Name]
		if h.Host != s.Addr || h.Port != s.Port {
			t.Errorf("%s = %+v, want %s:%d", s.Name, h, s.Addr, s.Port)
		}
	}
}

func TestSFTPSubsystem(t *testing.T) {
	for _, tt := range []struct {
		name   string
		noSFTP bool
	}{{"with sftp", false}, {"without sftp", true}} {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, Options{NoSFTP: tt.noSFTP})
			c, _, err := dial(t, s.HostPort(), s.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sess, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			err = sess.RequestSubsystem("sftp")
			if got := err == nil; got == tt.noSFTP {
				t.Fatalf("sftp subsystem available = %v, want %v", got, !tt.noSFTP)
			}
		})
	}
}

func TestHostKeyTypes(t *testing.T) {
	s := Start(t, Options{HostKeyTypes: []string{"ecdsa", "rsa"}})
	if got := []string{s.HostKeys()[0].Type(), s.HostKeys()[1].Type()}; got[0] != "ecdsa-sha2-nistp256" || got[1] != "ssh-rsa" {
		t.Fatalf("types %q", got)
	}
	_, key, err := dial(t, s.HostPort(), s.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if key.Type() == gossh.KeyAlgoED25519 {
		t.Fatal("server without an ed25519 key presented one")
	}
}

func TestProxyCountsAndFreezes(t *testing.T) {
	s := Start(t, Options{})
	p := NewProxy(t, s.HostPort())
	c, _, err := dial(t, p.HostPort(), s.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		output(t, c, "true")
	}
	if p.Accepted() != 1 {
		t.Fatalf("accepted %d connections, want 1", p.Accepted())
	}
	p.Freeze()
	done := make(chan error, 1)
	go func() {
		sess, err := c.NewSession()
		if err == nil {
			sess.Close()
		}
		done <- err
	}()
	select {
	case <-done:
		t.Fatal("a frozen proxy let a session open")
	case <-time.After(300 * time.Millisecond):
	}
	p.Thaw()
	if err := <-done; err != nil {
		t.Fatalf("after thaw: %v", err)
	}
}

func TestBlackholeAndClosedPort(t *testing.T) {
	addr, port := Blackhole(t)
	c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, strconv.Itoa(port)), time.Second)
	if err != nil {
		t.Fatalf("blackhole refused: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("blackhole spoke: %d, %v", n, err)
	}
	c.Close()

	addr, port = ClosedPort(t)
	if _, err := net.DialTimeout("tcp", net.JoinHostPort(addr, strconv.Itoa(port)), time.Second); err == nil {
		t.Fatal("closed port accepted")
	}
}

func TestShellRCHidden(t *testing.T) {
	heavytest.Root(t, "root's own ~/.bashrc")
	home, _ := os.UserHomeDir()
	rc, err := os.ReadFile(filepath.Join(home, ".bashrc"))
	if err != nil || len(rc) == 0 {
		t.Skip("needs a non-empty ~/.bashrc")
	}
	for _, keep := range []bool{false, true} {
		s := Start(t, Options{KeepShellRC: keep})
		c, _, err := dial(t, s.HostPort(), s.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.TrimSpace(output(t, c, "wc -c < ~/.bashrc"))
		c.Close()
		want := "0"
		if keep {
			want = strconv.Itoa(len(rc))
		}
		if got != want {
			t.Errorf("KeepShellRC %v: server sees %s bytes of ~/.bashrc, want %s", keep, got, want)
		}
	}
	// This process still sees the real file.
	if now, _ := os.ReadFile(filepath.Join(home, ".bashrc")); !bytes.Equal(now, rc) {
		t.Fatal("~/.bashrc changed outside the server")
	}
}
