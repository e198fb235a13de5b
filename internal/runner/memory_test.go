package runner

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Host memory outlives the run in its file, keeps other hosts' entries
// when runs on different hosts write at once, and forgets a key set to "".
func TestMemory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	m := newMemory(dir)
	var wg sync.WaitGroup
	for _, host := range []string{"ks1", "ks2", "ks3", "ks4"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := newMemory(dir).remember(host, "reinstall", "id-"+host); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, host := range []string{"ks1", "ks2", "ks3", "ks4"} {
		if got, err := m.recall(host, "reinstall"); err != nil || got != "id-"+host {
			t.Errorf("%s: %q, %v", host, got, err)
		}
	}
	if err := m.remember("ks2", "reinstall", ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := newMemory(dir).recall("ks2", "reinstall"); got != "" {
		t.Errorf("forgotten key still %q", got)
	}
	fi, err := os.Stat(filepath.Join(dir, MemoryFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("memory file: %v, %v", fi, err)
	}
	// Without a directory, memory lasts the run only.
	run := newMemory("")
	_ = run.remember("ks1", "k", "v")
	if got, _ := run.recall("ks1", "k"); got != "v" {
		t.Errorf("in-run memory: %q", got)
	}
}
