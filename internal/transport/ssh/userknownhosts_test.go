package ssh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/sshdtest"
)

// TestUserKnownHosts dials real servers with the user's own known_hosts
// named by UserKnownHostsFile: a key it holds is the only one accepted until
// nixbook's store knows the host, and the file is never written.
func TestUserKnownHosts(t *testing.T) {
	t.Parallel()
	key := sshdtest.NewClientKey(t)
	s := sshdtest.Start(t, sshdtest.Options{ClientKeyFile: key})
	certSrv, caKey := sshdtest.StartCertified(t, sshdtest.Options{Name: "c1", ClientKeyFile: key}, "c1.example.net")

	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := gossh.NewPublicKey(other)
	if err != nil {
		t.Fatal(err)
	}
	real := s.HostKeys()[0]
	addr := fmt.Sprintf("[%s]:%d", s.Addr, s.Port)
	caLine := "@cert-authority *.example.net " + string(gossh.MarshalAuthorizedKey(caKey))
	cases := []struct {
		name      string
		config    string // extra lines for Host *
		userFile  string
		server    *sshdtest.Server
		newSystem bool
		want      string // "" connects; else a substring of the error
		recorded  bool
	}{
		{name: "held key", userFile: knownhosts.Line([]string{addr}, real), server: s, recorded: true},
		{name: "hashed other key", userFile: knownhosts.Line([]string{knownhosts.HashHostname(addr)}, otherKey), server: s, want: "REMOTE HOST IDENTIFICATION HAS CHANGED"},
		{name: "alias", config: "HostKeyAlias web1", userFile: knownhosts.Line([]string{"web1"}, otherKey), server: s, want: "REMOTE HOST IDENTIFICATION HAS CHANGED"},
		{name: "new system", userFile: knownhosts.Line([]string{addr}, otherKey), server: s, newSystem: true, recorded: true},
		{name: "strict and unknown", config: "StrictHostKeyChecking yes", server: s, want: "StrictHostKeyChecking"},
		{name: "revoked", userFile: "@revoked * " + string(gossh.MarshalAuthorizedKey(real)), server: s, want: "revoked"},
		{name: "certificate", config: "HostKeyAlias c1.example.net", userFile: caLine, server: certSrv},
		{name: "certificate for another name", config: "HostKeyAlias c2.example.net", userFile: caLine, server: certSrv, want: "principal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			userFile := filepath.Join(dir, "known_hosts")
			if err := os.WriteFile(userFile, []byte(c.userFile), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, "config")
			conf := fmt.Sprintf("Host *\n  UserKnownHostsFile %s\n  GlobalKnownHostsFile none\n  %s\n", userFile, c.config)
			if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, DialerOptions{SSHConfigPath: cfg, DefaultUser: c.server.User})
			tg := c.server.Target()
			tg.KeyFiles = []string{key}
			conn, err := f.d.DialSSH(context.Background(), tg, f.dialOpts(c.newSystem))
			if c.want == "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				conn.Close()
			} else if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one saying %q", err, c.want)
			}
			var changed *hostkeys.ChangedError
			if strings.Contains(c.want, "CHANGED") && (!errors.As(err, &changed) || changed.Where != userFile+":1") {
				t.Fatalf("err = %#v, want a *hostkeys.ChangedError naming %s:1", err, userFile)
			}
			entries, _ := f.store.List()
			if c.recorded != (len(entries) == 1) {
				t.Fatalf("nixbook's store: %v, want recorded %v", entries, c.recorded)
			}
			if b, _ := os.ReadFile(userFile); string(b) != c.userFile {
				t.Fatalf("the user's file changed: %q", b)
			}
		})
	}
}
