package cli

import (
	"path/filepath"
	"sync"
	"testing"
)

// Runs started in the same second each get a directory of their own.
func TestClaimLogDirRace(t *testing.T) {
	base := filepath.Join(t.TempDir(), "logs", "20260101-000000")
	const runs = 8
	var wg sync.WaitGroup
	dirs := make([]string, runs)
	for i := range runs {
		wg.Go(func() {
			dir, err := claimLogDir(base)
			if err != nil {
				t.Error(err)
			}
			dirs[i] = dir
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, d := range dirs {
		if seen[d] {
			t.Fatalf("two runs share %s: %q", d, dirs)
		}
		seen[d] = true
	}
	if !seen[base] || !seen[base+"-8"] {
		t.Errorf("want %s to %s-8, got %q", base, base, dirs)
	}
}
