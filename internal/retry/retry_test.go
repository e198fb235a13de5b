package retry

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// fakeClock advances only when slept on, and by opCost on each attempt.
type fakeClock struct {
	now    time.Time
	slept  []time.Duration
	opCost time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	return nil
}

var errFlaky = errors.New("Failed getting release file")

func TestDo(t *testing.T) {
	s := time.Second
	tests := []struct {
		name      string
		policy    Policy
		opCost    time.Duration
		failures  int   // attempts that fail before one succeeds; -1: all
		last      error // what the failing attempts return
		wantErr   bool
		wantSleep []time.Duration
		wantCalls int
	}{
		{name: "first try", policy: Default, failures: 0, wantCalls: 1},
		{name: "recovers", policy: Default, failures: 3, last: errFlaky,
			wantSleep: []time.Duration{5 * s, 10 * s, 20 * s}, wantCalls: 4},
		{name: "waits are capped", policy: Policy{First: 30 * s, Max: time.Minute, Total: time.Hour}, failures: 4, last: errFlaky,
			wantSleep: []time.Duration{30 * s, 60 * s, 60 * s, 60 * s}, wantCalls: 5},
		{name: "gives up after minutes", policy: Default, failures: -1, last: errFlaky, wantErr: true,
			// 5+10+20+40+80 = 155 s, then 120 s waits to 1115 s; one more would end after 1200 s.
			wantSleep: []time.Duration{5 * s, 10 * s, 20 * s, 40 * s, 80 * s,
				120 * s, 120 * s, 120 * s, 120 * s, 120 * s, 120 * s, 120 * s, 120 * s}, wantCalls: 14},
		{name: "slow attempts count", policy: Policy{First: 5 * s, Max: 2 * time.Minute, Total: 10 * time.Minute}, opCost: 100 * s,
			failures: -1, last: errFlaky, wantErr: true,
			// 100, +5, 205, +10, 315, +20, 435, +40, 575: 575+80 > 600.
			wantSleep: []time.Duration{5 * s, 10 * s, 20 * s, 40 * s}, wantCalls: 5},
		{name: "permanent stops at once", policy: Default, failures: -1, last: Permanent(errFlaky), wantErr: true, wantCalls: 1},
		{name: "zero policy is the default", policy: Policy{}, failures: 1, last: errFlaky,
			wantSleep: []time.Duration{5 * s}, wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1e9, 0)}
			calls := 0
			var heard []int
			err := Do(context.Background(), tt.policy, clock, func(attempt int) error {
				calls++
				if attempt != calls {
					t.Errorf("attempt %d on call %d", attempt, calls)
				}
				clock.now = clock.now.Add(tt.opCost)
				if tt.failures < 0 || calls <= tt.failures {
					return tt.last
				}
				return nil
			}, func(attempt int, err error, wait time.Duration) { heard = append(heard, attempt) })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errFlaky) {
				t.Errorf("err = %v, want the attempt's error wrapped", err)
			}
			if calls != tt.wantCalls {
				t.Errorf("%d calls, want %d", calls, tt.wantCalls)
			}
			if !reflect.DeepEqual(clock.slept, tt.wantSleep) {
				t.Errorf("slept %v, want %v", clock.slept, tt.wantSleep)
			}
			if len(heard) != len(tt.wantSleep) {
				t.Errorf("onRetry heard %v, want one per wait", heard)
			}
			var gaveUp *GaveUpError
			if tt.wantErr && errors.As(err, &gaveUp) != (tt.failures < 0 && tt.last == errFlaky) {
				t.Errorf("err = %#v: GaveUpError only when the time ran out", err)
			}
			if gaveUp != nil && gaveUp.Attempts != tt.wantCalls {
				t.Errorf("GaveUpError.Attempts = %d, want %d", gaveUp.Attempts, tt.wantCalls)
			}
		})
	}
}

func TestDoStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Do(ctx, Policy{First: time.Hour, Total: 10 * time.Hour}, nil, func(int) error {
		calls++
		cancel()
		return errFlaky
	}, nil)
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("err = %v after %d calls, want context.Canceled after 1", err, calls)
	}
}

func TestDoRealClockTinyDelays(t *testing.T) {
	calls := 0
	err := Do(context.Background(), Policy{First: time.Millisecond, Max: 2 * time.Millisecond, Total: time.Second}, nil, func(int) error {
		calls++
		if calls < 3 {
			return errFlaky
		}
		return nil
	}, nil)
	if err != nil || calls != 3 {
		t.Errorf("err = %v after %d calls", err, calls)
	}
}
