package payload

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Parallel builds of one payload (two test packages on a fresh machine)
// take turns on the lock: both get the same entry, and no work directory
// is left behind.
func TestParallelBuildsShareOneEntry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	var wg sync.WaitGroup
	got := make([]*Payload, 2)
	errs := make([]error, 2)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = Build(context.Background(), Options{Dir: dir})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if *got[0] != *got[1] {
		t.Errorf("two builds: %+v and %+v", got[0], got[1])
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "*"))
	work, _ := filepath.Glob(filepath.Join(dir, ".build-*"))
	if len(entries) != 2 || len(work) != 0 { // payload-<key> and build.lock
		t.Errorf("cache holds %q and work directories %q", entries, work)
	}
}

// An entry whose artifact was cut short is not taken for complete; the
// work directory of a build killed long ago goes away.
func TestIncompleteEntryIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	p, err := Build(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p.ISO.Path, p.ISO.Size/2); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ".build-killed")
	if err := os.Mkdir(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	again, err := Build(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if *again != *p {
		t.Errorf("rebuilt %+v, want %+v", again, p)
	}
	if st, err := os.Stat(again.ISO.Path); err != nil || st.Size() != p.ISO.Size {
		t.Errorf("ISO after the rebuild: %v, %v", st, err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("the killed build's work directory is still there")
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv(CacheEnv, "/tmp/elsewhere")
	if d, err := DefaultDir(); err != nil || d != "/tmp/elsewhere" {
		t.Errorf("DefaultDir() = %q, %v with %s set", d, err, CacheEnv)
	}
	t.Setenv(CacheEnv, "")
	t.Setenv("XDG_CACHE_HOME", "/tmp/xdg")
	if d, err := DefaultDir(); err != nil || d != "/tmp/xdg/nixbook-sim" {
		t.Errorf("DefaultDir() = %q, %v", d, err)
	}
}
