package ovh

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate is a request budget: Requests per Per on average, with bursts of up
// to Burst requests at once.
type Rate struct {
	Requests int
	Per      time.Duration
	Burst    int
}

// DefaultRate is OVH's fair-use figure per consumer key, 60 requests a
// minute (ovh-api.md §8), with bursts of 5 so that one host's few calls
// do not wait; the burst is small enough that no minute goes far over 60.
func DefaultRate() Rate { return Rate{Requests: 60, Per: time.Minute, Burst: 5} }

// String prints the rate as ParseRate reads it.
func (r Rate) String() string {
	per := r.Per.String()
	switch r.Per {
	case time.Second:
		per = "s"
	case time.Minute:
		per = "m"
	case time.Hour:
		per = "h"
	}
	return fmt.Sprintf("%d/%s burst %d", r.Requests, per, r.Burst)
}

func (r Rate) interval() time.Duration { return r.Per / time.Duration(r.Requests) }

// ParseRate reads "50/m", "2/s", "100/h" or "30/90s", optionally followed by
// " burst N". Without a burst, the burst is a fifth of the requests, at
// least 1.
func ParseRate(s string) (Rate, error) {
	text := strings.TrimSpace(s)
	burst := 0
	if head, tail, ok := strings.Cut(text, "burst"); ok {
		b, err := strconv.Atoi(strings.TrimSpace(tail))
		if err != nil || b < 1 {
			return Rate{}, fmt.Errorf("rate %q: burst must be a positive whole number", s)
		}
		burst, text = b, strings.TrimSpace(head)
	}
	n, per, ok := strings.Cut(text, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want requests per period, such as 50/m or 2/s", s)
	}
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || count < 1 {
		return Rate{}, fmt.Errorf("rate %q: the request count must be a positive whole number", s)
	}
	var d time.Duration
	switch per = strings.TrimSpace(per); per {
	case "s", "sec", "second":
		d = time.Second
	case "m", "min", "minute":
		d = time.Minute
	case "h", "hour":
		d = time.Hour
	default:
		d, err = time.ParseDuration(per)
		if err != nil || d <= 0 {
			return Rate{}, fmt.Errorf("rate %q: the period must be s, m, h or a duration such as 90s", s)
		}
	}
	if burst == 0 {
		burst = max(1, count/5)
	}
	return Rate{Requests: count, Per: d, Burst: burst}, nil
}

// Limiter is a token bucket, kept as the time the next request may start
// (GCRA): Burst requests may go at once, then one every Per/Requests.
// Waiters are served in the order they arrive.
type Limiter struct {
	rate  Rate
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu  sync.Mutex
	tat time.Time // theoretical arrival time of the next request
}

// NewLimiter returns a limiter for r on the real clock.
func NewLimiter(r Rate) *Limiter {
	if r.Requests < 1 || r.Per <= 0 {
		r = DefaultRate()
	}
	if r.Burst < 1 {
		r.Burst = 1
	}
	return &Limiter{rate: r, now: time.Now, sleep: sleepCtx}
}

// Rate is the limiter's rate.
func (l *Limiter) Rate() Rate { return l.rate }

// Wait blocks until a request may be sent, or ctx ends. A waiter whose ctx
// ends gives its slot back only if nobody queued behind it.
func (l *Limiter) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := l.rate.interval()
	tolerance := time.Duration(l.rate.Burst-1) * t
	l.mu.Lock()
	now := l.now()
	if l.tat.Before(now) {
		l.tat = now
	}
	allowAt := l.tat.Add(-tolerance)
	l.tat = l.tat.Add(t)
	mine := l.tat
	l.mu.Unlock()
	wait := allowAt.Sub(now)
	if wait <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(allowAt) {
		l.giveBack(mine, t)
		return fmt.Errorf("ovh: rate limit (%s): no request slot before the deadline: %w", l.rate, context.DeadlineExceeded)
	}
	if err := l.sleep(ctx, wait); err != nil {
		l.giveBack(mine, t)
		return err
	}
	return nil
}

// Hold keeps every request of the account from starting within d from now,
// as after a 429: the API refuses the key, not one call. Requests already
// waiting keep their turn.
func (l *Limiter) Hold(d time.Duration) {
	if d <= 0 {
		return
	}
	t := l.rate.interval()
	tolerance := time.Duration(l.rate.Burst-1) * t
	l.mu.Lock()
	defer l.mu.Unlock()
	// The next request may start at tat-tolerance; push that to now+d.
	if next := l.now().Add(d + tolerance); next.After(l.tat) {
		l.tat = next
	}
}

func (l *Limiter) giveBack(mine time.Time, t time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tat.Equal(mine) {
		l.tat = l.tat.Add(-t)
	}
}

// Limiters holds one limiter per consumer key, which OVH counts requests
// by, so that every client of the key shares one budget.
type Limiters struct {
	mu sync.Mutex
	m  map[string]*Limiter
	// accounts is what the clients of an account share beside the
	// budget: one go-ovh client and the run's cache (account.go).
	accounts map[string]*account
}

// NewLimiters returns an empty set.
func NewLimiters() *Limiters { return &Limiters{m: map[string]*Limiter{}} }

// For returns the limiter of a consumer key on an endpoint, made with r on
// first use; later calls get that limiter whatever r they pass, since one
// key has one budget. The key is only a map key: never shown.
func (ls *Limiters) For(endpointURL, consumerKey string, r Rate) *Limiter {
	key := endpointURL + "\x00" + consumerKey
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l, ok := ls.m[key]; ok {
		return l
	}
	l := NewLimiter(r)
	ls.m[key] = l
	return l
}

func sleepCtx(ctx context.Context, d time.Duration) error {
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
