package hostkeys

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func newSigner(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hostCert(t *testing.T, ca gossh.Signer, key gossh.PublicKey, principals []string, until time.Time) *gossh.Certificate {
	t.Helper()
	c := &gossh.Certificate{
		Key: key, CertType: gossh.HostCert, ValidPrincipals: principals,
		ValidAfter: uint64(time.Now().Add(-time.Hour).Unix()), ValidBefore: uint64(until.Unix()),
	}
	if err := c.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestUserTrust(t *testing.T) {
	key, other := newKey(t, "ed25519"), newKey(t, "ed25519")
	ecdsa := newKey(t, "ecdsa")
	ca := newSigner(t)
	line := func(host string, k gossh.PublicKey) string { return knownhosts.Line([]string{host}, k) }
	soon := time.Now().Add(time.Hour)
	cases := []struct {
		name     string
		user     string // the user's known_hosts
		host     string // lookup name
		strict   bool
		stored   gossh.PublicKey // in nixbook's store beforehand
		newSys   bool
		offered  gossh.PublicKey
		wantErr  string // "" accepts; "changed", "revoked", "strict" or a substring
		recorded bool
	}{
		{name: "held key accepted and recorded", user: line("10.0.0.1", key), host: "10.0.0.1", offered: key, recorded: true},
		{name: "other key refused", user: line("10.0.0.1", key), host: "10.0.0.1", offered: other, wantErr: "changed"},
		{name: "other type refused", user: line("10.0.0.1", ecdsa), host: "10.0.0.1", offered: key, wantErr: "changed"},
		{name: "hashed entry", user: line(knownhosts.HashHostname("[10.0.0.1]:2222"), key), host: "[10.0.0.1]:2222", offered: other, wantErr: "changed"},
		{name: "hashed other port does not apply", user: line(knownhosts.HashHostname("10.0.0.1"), key), host: "[10.0.0.1]:2222", offered: other, recorded: true},
		{name: "wildcard", user: line("10.0.0.*", key), host: "10.0.0.1", offered: other, wantErr: "changed"},
		{name: "negated pattern", user: line("10.0.0.*,!10.0.0.1", key), host: "10.0.0.1", offered: other, recorded: true},
		{name: "alias", user: line("web", key), host: "web", offered: other, wantErr: "changed"},
		{name: "unknown host trusted on first use", user: line("10.9.9.9", key), host: "10.0.0.1", offered: other, recorded: true},
		{name: "unknown host refused when strict", host: "10.0.0.1", strict: true, offered: other, wantErr: "strict"},
		{name: "strict host known to the store", host: "10.0.0.1", strict: true, stored: other, offered: other},
		{name: "store wins once it knows the host", user: line("10.0.0.1", key), host: "10.0.0.1", stored: other, offered: other},
		{name: "new system not held to the old key", user: line("10.0.0.1", key), host: "10.0.0.1", newSys: true, offered: other, recorded: true},
		{name: "revoked refused", user: "@revoked * " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(other))), host: "10.0.0.1", stored: other, offered: other, wantErr: "revoked"},
		{name: "revoked refused for a new system", user: "@revoked * " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(other))), host: "10.0.0.1", newSys: true, offered: other, wantErr: "revoked"},
		{name: "certificate from the authority", user: "@cert-authority *.example.net " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(ca.PublicKey()))), host: "web.example.net", offered: hostCert(t, ca, key, []string{"web.example.net"}, soon)},
		{name: "certificate for another name", user: "@cert-authority *.example.net " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(ca.PublicKey()))), host: "web.example.net", offered: hostCert(t, ca, key, []string{"db.example.net"}, soon), wantErr: "principal"},
		{name: "expired certificate", user: "@cert-authority *.example.net " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(ca.PublicKey()))), host: "web.example.net", offered: hostCert(t, ca, key, []string{"web.example.net"}, time.Now().Add(-time.Minute)), wantErr: "expired"},
		{name: "certificate from an authority for other hosts", user: "@cert-authority *.example.org " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(ca.PublicKey()))), host: "web.example.net", offered: hostCert(t, ca, key, []string{"web.example.net"}, soon), wantErr: "no authorities"},
		{name: "garbage lines skipped", user: "not a line\n" + line("10.0.0.1", key), host: "10.0.0.1", offered: other, wantErr: "changed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			userFile := filepath.Join(dir, "user_known_hosts")
			if err := os.WriteFile(userFile, []byte(c.user+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			s := New(filepath.Join(dir, "nixbook", "known_hosts"))
			if c.stored != nil {
				if err := s.Check("h1", 22, c.stored, CheckOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.ReadFile(userFile)
			u := &UserTrust{Files: []string{filepath.Join(dir, "missing"), userFile}, Host: c.host, Strict: c.strict}
			err := s.Check("h1", 22, c.offered, CheckOptions{User: u, NewSystem: c.newSys})
			var changed *ChangedError
			var revoked *RevokedError
			var strict *StrictError
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case c.wantErr == "":
			case c.wantErr == "changed":
				if !errors.As(err, &changed) || changed.Where != userFile+":1" && changed.Where != userFile+":2" {
					t.Fatalf("err = %v, want a *ChangedError from the user's file", err)
				}
				if !strings.Contains(err.Error(), "REMOTE HOST IDENTIFICATION HAS CHANGED") {
					t.Fatalf("message %q", err)
				}
			case c.wantErr == "revoked":
				if !errors.As(err, &revoked) {
					t.Fatalf("err = %v, want *RevokedError", err)
				}
			case c.wantErr == "strict":
				if !errors.As(err, &strict) {
					t.Fatalf("err = %v, want *StrictError", err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, c.wantErr)
				}
			}
			if after, _ := os.ReadFile(userFile); string(after) != string(before) {
				t.Fatalf("the user's file was written")
			}
			_, ok, _ := s.lookup("h1", 22, c.offered)
			if c.recorded && !ok {
				t.Fatalf("key not recorded in nixbook's store")
			}
			if _, isCert := c.offered.(*gossh.Certificate); isCert {
				if b, _ := os.ReadFile(s.Path()); len(b) > 0 {
					t.Fatalf("a certificate was recorded: %s", b)
				}
			}
		})
	}
}

func TestLookupName(t *testing.T) {
	for _, c := range []struct {
		host, alias string
		port        int
		want        string
	}{
		{"10.0.0.1", "", 22, "10.0.0.1"},
		{"Web.Example.NET", "", 0, "web.example.net"},
		{"10.0.0.1", "", 2222, "[10.0.0.1]:2222"},
		{"10.0.0.1", "web", 2222, "web"},
	} {
		if got := LookupName(c.host, c.alias, c.port); got != c.want {
			t.Errorf("LookupName(%q, %q, %d) = %q, want %q", c.host, c.alias, c.port, got, c.want)
		}
	}
}

func TestUserKeyTypesAndAuthorities(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "kh")
	ca := newSigner(t)
	data := knownhosts.Line([]string{"a"}, newKey(t, "ecdsa")) + "\n" +
		"@cert-authority b " + string(gossh.MarshalAuthorizedKey(ca.PublicKey()))
	if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &UserTrust{Files: []string{f}, Host: "a"}
	b := &UserTrust{Files: []string{f}, Host: "b"}
	if got := a.KeyTypes(); len(got) != 1 || got[0] != gossh.KeyAlgoECDSA256 {
		t.Errorf("KeyTypes = %v", got)
	}
	if a.Authorities() || !b.Authorities() {
		t.Errorf("Authorities: a %v, b %v", a.Authorities(), b.Authorities())
	}
}
