// Package buildonce builds a shared cache entry (the real-ZFS guest image,
// the simulated fleet's NixOS payload) once per machine: processes that
// need the same entry at the same time take turns on a lock file, and the
// ones that come second find the first one's result instead of building it
// again.
//
// The lock only serializes; a build must still make its entry appear
// whole (build in a temporary directory, rename it into place), so that a
// build killed half way leaves nothing load takes for complete.
package buildonce

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// poll is how often a waiting process tries the lock.
var poll = time.Second

// Do returns what load finds when it succeeds. Otherwise it takes the lock
// file lockPath, waiting up to wait for a process that holds it (another
// build, whose result it then uses), tries load again, and else runs build
// and returns load's result after it. logf, when not nil, hears that the
// process waits.
func Do[T any](ctx context.Context, lockPath string, wait time.Duration, logf func(format string, args ...any),
	load func() (T, error), build func(ctx context.Context) error) (T, error) {
	var zero T
	if v, err := load(); err == nil {
		return v, nil
	}
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		return zero, err
	}
	lock := flock.New(lockPath)
	locked, err := lock.TryLock()
	if err != nil {
		return zero, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	if !locked {
		if logf != nil {
			logf("waiting (up to %s) for another process that is building it (lock %s)", wait, lockPath)
		}
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, wait)
		locked, err = lock.TryLockContext(wctx, poll)
		cancel()
		if !locked {
			if ctx.Err() != nil {
				return zero, fmt.Errorf("wait for the lock %s: %w", lockPath, ctx.Err())
			}
			return zero, fmt.Errorf("waited %s for another process's build (lock %s): %w",
				time.Since(start).Round(time.Second), lockPath, errors.Join(err, ErrWaitedTooLong))
		}
		if logf != nil {
			logf("the lock is free after %s", time.Since(start).Round(time.Second))
		}
	}
	defer lock.Unlock()
	// The process that held the lock may have built it.
	if v, err := load(); err == nil {
		return v, nil
	}
	if err := build(ctx); err != nil {
		return zero, err
	}
	return load()
}

// ErrWaitedTooLong says another process held the lock for longer than the
// wait allowed.
var ErrWaitedTooLong = errors.New("the build lock stayed taken")
