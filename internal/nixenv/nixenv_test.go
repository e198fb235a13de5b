package nixenv

import (
	"slices"
	"testing"
)

func TestScratchKeepsNixToTheScratchDirectory(t *testing.T) {
	t.Setenv("PATH", "/usr/bin")
	got := Scratch("/w", "NIX_PATH=nixpkgs=/p")
	for _, want := range []string{"HOME=/w/home", "NIX_STATE_DIR=/w/state", "NIX_CONF_DIR=/w/conf", "NIX_REMOTE=", "PATH=/usr/bin", "NIX_PATH=nixpkgs=/p"} {
		if !slices.Contains(got, want) {
			t.Errorf("Scratch: no %q in %q", want, got)
		}
	}
}
