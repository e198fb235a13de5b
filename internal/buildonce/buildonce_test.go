package buildonce

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofrs/flock"
)

func init() { poll = 5 * time.Millisecond }

// cache is a fake cache entry: build writes it in a temporary file and
// renames it into place, as the real builds do with their directories.
type cache struct {
	dir    string
	builds atomic.Int32
}

func (c *cache) entry() string { return filepath.Join(c.dir, "entry") }

func (c *cache) load() (string, error) {
	b, err := os.ReadFile(c.entry())
	return string(b), err
}

func (c *cache) build(started chan<- struct{}, release <-chan struct{}, fail bool) func(context.Context) error {
	return func(ctx context.Context) error {
		n := c.builds.Add(1)
		if started != nil {
			started <- struct{}{}
		}
		if release != nil {
			<-release
		}
		tmp := c.entry() + ".tmp"
		if err := os.WriteFile(tmp, []byte("half"), 0o644); err != nil {
			return err
		}
		if fail {
			return errors.New("killed half way")
		}
		if err := os.WriteFile(tmp, []byte(fmt.Sprintf("build %d", n)), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, c.entry())
	}
}

type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func TestSecondBuilderWaitsAndReusesTheFirstsResult(t *testing.T) {
	c := &cache{dir: t.TempDir()}
	lock := filepath.Join(c.dir, "build.lock")
	started, release := make(chan struct{}, 2), make(chan struct{})

	type result struct {
		v   string
		err error
	}
	first, second := make(chan result, 1), make(chan result, 1)
	go func() {
		v, err := Do(context.Background(), lock, time.Minute, nil, c.load, c.build(started, release, false))
		first <- result{v, err}
	}()
	<-started // the first holds the lock and builds

	var waitLog logs
	go func() {
		v, err := Do(context.Background(), lock, time.Minute, waitLog.logf, c.load, c.build(started, nil, false))
		second <- result{v, err}
	}()
	select {
	case r := <-second:
		t.Fatalf("the second returned %+v while the first was building", r)
	case <-started:
		t.Fatal("the second built too")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)

	r1, r2 := <-first, <-second
	if r1.err != nil || r2.err != nil {
		t.Fatalf("errors: %v, %v", r1.err, r2.err)
	}
	if r1.v != "build 1" || r2.v != "build 1" || c.builds.Load() != 1 {
		t.Errorf("results %q and %q after %d builds, want both the one build's", r1.v, r2.v, c.builds.Load())
	}
	if !strings.Contains(waitLog.String(), "waiting") {
		t.Errorf("the second did not say it waits: %q", waitLog.String())
	}

	// A third finds the entry without the lock.
	held := flock.New(lock)
	if ok, err := held.TryLock(); !ok || err != nil {
		t.Fatal(ok, err)
	}
	defer held.Unlock()
	v, err := Do(context.Background(), lock, time.Millisecond, nil, c.load, c.build(nil, nil, false))
	if err != nil || v != "build 1" {
		t.Errorf("cached: %q, %v", v, err)
	}
}

func TestAFailedBuildIsNotTakenForComplete(t *testing.T) {
	c := &cache{dir: t.TempDir()}
	lock := filepath.Join(c.dir, "build.lock")
	if _, err := Do(context.Background(), lock, time.Minute, nil, c.load, c.build(nil, nil, true)); err == nil {
		t.Fatal("the failing build succeeded")
	}
	v, err := Do(context.Background(), lock, time.Minute, nil, c.load, c.build(nil, nil, false))
	if err != nil || v != "build 2" {
		t.Errorf("after a failed build: %q, %v; want a new build", v, err)
	}
}

func TestWaitIsBounded(t *testing.T) {
	c := &cache{dir: t.TempDir()}
	lock := filepath.Join(c.dir, "build.lock")
	held := flock.New(lock)
	if ok, err := held.TryLock(); !ok || err != nil {
		t.Fatal(ok, err)
	}
	defer held.Unlock()
	_, err := Do(context.Background(), lock, 50*time.Millisecond, nil, c.load, c.build(nil, nil, false))
	if !errors.Is(err, ErrWaitedTooLong) || c.builds.Load() != 0 {
		t.Errorf("err = %v after %d builds, want ErrWaitedTooLong and none", err, c.builds.Load())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Do(ctx, lock, time.Minute, nil, c.load, c.build(nil, nil, false)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

// The lock holds between processes, and goes away with a process that is
// killed while building: the next one builds.
const helperEnv = "BUILDONCE_TEST_HELPER_DIR"

func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process of TestLockAcrossProcesses")
	}
	c := &cache{dir: dir}
	mode := os.Getenv("BUILDONCE_TEST_HELPER_MODE")
	_, err := Do(context.Background(), filepath.Join(dir, "build.lock"), time.Minute, nil, c.load, func(ctx context.Context) error {
		os.WriteFile(filepath.Join(dir, "building"), nil, 0o644)
		time.Sleep(300 * time.Millisecond)
		if mode == "die" {
			os.WriteFile(c.entry()+".tmp", []byte("half"), 0o644)
			os.Exit(3) // killed half way: no cleanup, no rename
		}
		return os.WriteFile(c.entry(), []byte("other process"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLockAcrossProcesses(t *testing.T) {
	for _, mode := range []string{"build", "die"} {
		t.Run(mode, func(t *testing.T) {
			c := &cache{dir: t.TempDir()}
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), helperEnv+"="+c.dir, "BUILDONCE_TEST_HELPER_MODE="+mode)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			for i := 0; ; i++ {
				if _, err := os.Stat(filepath.Join(c.dir, "building")); err == nil {
					break
				}
				if i > 1000 {
					t.Fatal("the other process never started building")
				}
				time.Sleep(10 * time.Millisecond)
			}
			v, err := Do(context.Background(), filepath.Join(c.dir, "build.lock"), time.Minute, nil, c.load, c.build(nil, nil, false))
			cmd.Wait()
			want := map[string]string{"build": "other process", "die": "build 1"}[mode]
			if err != nil || v != want {
				t.Errorf("got %q, %v; want %q", v, err, want)
			}
			if mode == "build" && c.builds.Load() != 0 {
				t.Error("built although the other process had")
			}
		})
	}
}
