package hostkeys

import (
	"errors"
	"path/filepath"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

func TestPin(t *testing.T) {
	s := New(filepath.Join(t.TempDir(), "known_hosts"))
	installer, final := newKey(t, "ed25519"), newKey(t, "ed25519")
	if err := s.Check("ks1", 22, installer, CheckOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		key          gossh.PublicKey
		wantReplaced int
	}{
		{name: "replaces the running system's key", key: final, wantReplaced: 1},
		{name: "pinning again changes nothing", key: final, wantReplaced: 0},
	}
	for _, tt := range tests {
		replaced, err := s.Pin("ks1", 22, tt.key, nil)
		if err != nil || len(replaced) != tt.wantReplaced {
			t.Fatalf("%s: replaced %d, %v; want %d", tt.name, len(replaced), err, tt.wantReplaced)
		}
	}
	// The new system is accepted without NewSystem, the old one refused.
	if err := s.Check("ks1", 22, final, CheckOptions{}); err != nil {
		t.Errorf("pinned key refused: %v", err)
	}
	var changed *ChangedError
	if err := s.Check("ks1", 22, installer, CheckOptions{}); !errors.As(err, &changed) {
		t.Errorf("old key: %v, want a ChangedError", err)
	}
}
