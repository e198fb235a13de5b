// Package retry runs an operation that talks to a flaky server (a package
// mirror, a module proxy) again with exponential back-off, for minutes
// rather than seconds: mirrors drop connections now and then, and a test run
// on a fresh machine must not fail on that.
package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nixbook/nixbook/internal/clock"
)

// Policy says how long to keep trying. The zero Policy is Default.
type Policy struct {
	First time.Duration // wait after the first failure; doubles after each
	Max   time.Duration // longest single wait
	// Total bounds the time from the first attempt: no attempt starts
	// after it, nor a wait that would end after it.
	Total time.Duration
}

// Default waits 5 s, 10 s, 20 s ... at most 2 minutes apart, for up to 20
// minutes: the Debian mirror was seen down for 10 minutes and more.
var Default = Policy{First: 5 * time.Second, Max: 2 * time.Minute, Total: 20 * time.Minute}

// Clock is the time Do sees; tests fake it.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done, whichever comes first.
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is the wall clock.
var Real Clock = clock.Clock{}

// permanent marks an error no retry can fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that Do returns it at once instead of trying again.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// GaveUpError is what Do returns when the time ran out: the last
// attempt's error, how many attempts failed and over how long.
type GaveUpError struct {
	Attempts int
	Elapsed  time.Duration
	Err      error
}

func (e *GaveUpError) Error() string {
	return fmt.Sprintf("%d attempts over %s: %v", e.Attempts, e.Elapsed.Round(time.Second), e.Err)
}

func (e *GaveUpError) Unwrap() error { return e.Err }

// Do calls op until it returns nil, an error wrapped with Permanent
// (returned unwrapped), or the policy's time runs out (a *GaveUpError
// wrapping op's last error). onRetry, when not nil, hears of each failure
// that is retried and the wait before the next attempt.
func Do(ctx context.Context, p Policy, clock Clock, op func(attempt int) error, onRetry func(attempt int, err error, wait time.Duration)) error {
	if p == (Policy{}) {
		p = Default
	}
	if clock == nil {
		clock = Real
	}
	start := clock.Now()
	wait := p.First
	for attempt := 1; ; attempt++ {
		err := op(attempt)
		if err == nil {
			return nil
		}
		var perm permanent
		if errors.As(err, &perm) {
			return perm.err
		}
		elapsed := clock.Now().Sub(start)
		if elapsed+wait > p.Total {
			return &GaveUpError{Attempts: attempt, Elapsed: elapsed, Err: err}
		}
		if onRetry != nil {
			onRetry(attempt, err, wait)
		}
		if serr := clock.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (after %d attempts; last: %v)", serr, attempt, err)
		}
		wait *= 2
		if p.Max > 0 && wait > p.Max {
			wait = p.Max
		}
	}
}
