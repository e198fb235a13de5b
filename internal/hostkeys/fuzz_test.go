package hostkeys

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// FuzzKnownHosts checks that no known_hosts file, however corrupt, panics
// the store: listing, checking (as nixbook's store and as the user's file), choosing
// algorithms and forgetting either
// work or report an error. The seed corpus is testdata/fuzz and the lines
// below.
func FuzzKnownHosts(f *testing.F) {
	for _, s := range []string{
		"[ks1]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmYz1VDo0wJ0ZqsA2xZ1q5c0g7V1bQe0i0Q2r1sQ7qZ\n",
		"|1|c2FsdA==|aGFzaA== ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmYz1VDo0wJ0ZqsA2xZ1q5c0g7V1bQe0i0Q2r1sQ7qZ\n",
		"@revoked ks1 ssh-rsa AAAA\n# comment\n\n",
		"ks1,[ks2]:2222 ecdsa-sha2-nistp256 !!!\n",
		"[ks1 ssh-ed25519\n",
		"@cert-authority *.ks,!ks1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmYz1VDo0wJ0ZqsA2xZ1q5c0g7V1bQe0i0Q2r1sQ7qZ\n",
		"ks?,[ks1]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmYz1VDo0wJ0ZqsA2xZ1q5c0g7V1bQe0i0Q2r1sQ7qZ\n",
	} {
		f.Add([]byte(s))
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	key, err := gossh.NewPublicKey(pub)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "known_hosts")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s := New(path)
		_, _ = s.List()
		_ = s.Algorithms("ks1", 22)
		_ = s.Check("ks1", 22, probeKey{}, CheckOptions{})
		_ = s.Check("ks1", 22, key, CheckOptions{})
		_ = s.Check("ks2", 2222, key, CheckOptions{NewSystem: true})
		// The same bytes as the user's own known_hosts, read only.
		u := &UserTrust{Files: []string{path}, Host: "ks1"}
		other := New(filepath.Join(t.TempDir(), "nixbook_known_hosts"))
		_ = other.Check("ks1", 22, key, CheckOptions{User: u})
		_ = u.KeyTypes()
		_ = u.Authorities()
		_, _ = s.Forget("ks1")
		_, _ = s.Forget("ks2:2222")
	})
}
