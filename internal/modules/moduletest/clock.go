package moduletest

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/nixbook/nixbook/internal/clock"
)

// Clock is a fake clock for modules that wait: a pause passes at once,
// moves the clock on and is recorded. It is safe for concurrent use.
type Clock struct {
	// Yield, when set, is real time each pause also takes, so that other
	// goroutines (an emulator's, a fake machine's) move on meanwhile.
	Yield time.Duration

	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

// NewClock starts a fake clock at a fixed date.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

// Now is the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep records d and moves the clock by it; it fails only when ctx ends.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if c.Yield > 0 {
		time.Sleep(c.Yield)
	}
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

// Time is the fake clock as code that waits takes it.
func (c *Clock) Time() clock.Clock { return clock.Clock{NowFn: c.Now, SleepFn: c.Sleep} }

// Sleeps lists the pauses so far, such as "1s 2s 4s".
func (c *Clock) Sleeps() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := make([]string, len(c.sleeps))
	for i, d := range c.sleeps {
		s[i] = d.String()
	}
	return strings.Join(s, " ")
}

// Pauses is how many pauses were taken.
func (c *Clock) Pauses() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sleeps)
}

// Elapsed is the fake time passed: the sum of the pauses.
func (c *Clock) Elapsed() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var total time.Duration
	for _, d := range c.sleeps {
		total += d
	}
	return total
}
