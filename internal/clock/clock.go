// Package clock is the time of code that waits (for a host to come back,
// for a download to be retried), which tests replace.
package clock

import (
	"context"
	"time"
)

// Clock is the time code that waits sees: the zero value is real time, and
// tests set the functions.
type Clock struct {
	NowFn   func() time.Time
	SleepFn func(ctx context.Context, d time.Duration) error
}

// Now is the current time.
func (c Clock) Now() time.Time {
	if c.NowFn != nil {
		return c.NowFn()
	}
	return time.Now()
}

// Sleep pauses for d or until ctx ends.
func (c Clock) Sleep(ctx context.Context, d time.Duration) error {
	if c.SleepFn != nil {
		return c.SleepFn(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
