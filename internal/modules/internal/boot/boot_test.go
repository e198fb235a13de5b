package boot_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/modules/internal/boot"
	"github.com/nixbook/nixbook/internal/modules/moduletest"
	"github.com/nixbook/nixbook/internal/transport"
)

func testKey(t *testing.T, seed byte) gossh.PublicKey {
	t.Helper()
	k, err := gossh.NewPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)).Public())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestWait(t *testing.T) {
	oldKey, otherKey := testKey(t, 1), testKey(t, 2)
	tests := []struct {
		name       string
		host       *moduletest.FlakyHost
		opts       boot.Options
		wantErr    string
		wantDials  int
		wantSleeps string
	}{
		{
			name:      "up at once",
			host:      &moduletest.FlakyHost{},
			opts:      boot.Options{Timeout: time.Minute, Sleep: time.Second},
			wantDials: 1,
		},
		{
			name:       "comes back after refused dials",
			host:       &moduletest.FlakyHost{FailDials: 3},
			opts:       boot.Options{Timeout: time.Minute, Sleep: time.Second},
			wantDials:  4,
			wantSleeps: "1s 1s 1s",
		},
		{
			name:       "backoff doubles up to the cap",
			host:       &moduletest.FlakyHost{FailDials: 5},
			opts:       boot.Options{Timeout: time.Minute, Sleep: time.Second, MaxSleep: 5 * time.Second},
			wantDials:  6,
			wantSleeps: "1s 2s 4s 5s 5s",
		},
		{
			name:       "dial works but the command fails at first",
			host:       &moduletest.FlakyHost{FailRuns: 2},
			opts:       boot.Options{Timeout: time.Minute, Sleep: time.Second},
			wantDials:  3,
			wantSleeps: "1s 1s",
		},
		{
			name:       "gives up at the timeout with the last error",
			host:       &moduletest.FlakyHost{FailDials: 1000},
			opts:       boot.Options{Timeout: 10 * time.Second, Sleep: 3 * time.Second},
			wantErr:    "gave up after 10s and 4 attempts: dial ks1: connection refused: unreachable",
			wantDials:  4,
			wantSleeps: "3s 3s 3s",
		},
		{
			name:      "a changed host key ends the wait",
			host:      &moduletest.FlakyHost{FailDials: 1000, DialErr: &hostkeys.ChangedError{Name: "ks1"}},
			opts:      boot.Options{Timeout: time.Minute, Sleep: time.Second},
			wantErr:   "host key of ks1 changed",
			wantDials: 1,
		},
		{
			name:       "the old system still offering its key, the new one pinned: retried",
			host:       &moduletest.FlakyHost{FailDials: 2, DialErr: &hostkeys.ChangedError{Name: "ks1", Offered: oldKey}},
			opts:       boot.Options{Timeout: time.Minute, Sleep: time.Second, StaleKeys: []gossh.PublicKey{oldKey}},
			wantDials:  3,
			wantSleeps: "1s 1s",
		},
		{
			name:      "a key neither pinned nor the old system's ends the wait",
			host:      &moduletest.FlakyHost{FailDials: 1000, DialErr: &hostkeys.ChangedError{Name: "ks1", Offered: otherKey}},
			opts:      boot.Options{Timeout: time.Minute, Sleep: time.Second, StaleKeys: []gossh.PublicKey{oldKey}},
			wantErr:   "host key of ks1 changed",
			wantDials: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := moduletest.NewClock()
			tt.opts.Clock = clock.Time()
			err := boot.Reconnect(context.Background(), tt.host, tt.opts, func(ctx context.Context) (bool, error) {
				_, err := tt.host.Run(ctx, transport.Cmd{Args: []string{"true"}})
				return err == nil, err
			})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			// A wait that gives up is the task's failure, which a rescue
			// can take over, not an unreachable host.
			if errors.Is(err, transport.ErrUnreachable) {
				t.Errorf("err = %v wraps transport.ErrUnreachable", err)
			}
			if tt.host.Dials() != tt.wantDials {
				t.Errorf("dials = %d, want %d", tt.host.Dials(), tt.wantDials)
			}
			if got := clock.Sleeps(); got != tt.wantSleeps {
				t.Errorf("sleeps = %q, want %q", got, tt.wantSleeps)
			}
		})
	}
}

func TestWaitCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := &moduletest.FlakyHost{FailDials: 1000}
	clock := moduletest.NewClock()
	c := clock.Time()
	sleep := c.SleepFn
	c.SleepFn = func(ctx context.Context, d time.Duration) error {
		if clock.Pauses() == 2 {
			cancel() // the run is interrupted while the host is down
		}
		return sleep(ctx, d)
	}
	err := boot.Reconnect(ctx, h, boot.Options{Timeout: time.Hour, Sleep: time.Second, Clock: c}, func(context.Context) (bool, error) {
		return true, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want cancelled", err)
	}
	if h.Dials() != 3 {
		t.Errorf("dials = %d, want 3", h.Dials())
	}
}

// A host that answers only at another of its addresses is found there, and
// the wait says where; one that answers at its own is never dialed
// elsewhere.
func TestReconnectElsewhere(t *testing.T) {
	const v6 = "2001:db8:1:2::10"
	tests := []struct {
		name      string
		at        string
		wantDials []string
	}{
		{"at its own address", "", []string{""}},
		{"only at its IPv6 address", v6, []string{"", v6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := tt.at
			h := &moduletest.FlakyHost{OnlyAt: &at}
			answered := "unset"
			err := boot.Reconnect(context.Background(), h, boot.Options{
				Timeout: time.Minute, Sleep: time.Second, AttemptTimeout: time.Second,
				Elsewhere: []string{v6}, Answered: func(a string) { answered = a },
			}, func(context.Context) (bool, error) { return true, nil })
			if err != nil {
				t.Fatal(err)
			}
			var dials []string
			for _, o := range h.DialOptions() {
				dials = append(dials, o.Address)
			}
			if strings.Join(dials, ",") != strings.Join(tt.wantDials, ",") || answered != tt.at {
				t.Errorf("dialed %q, answered at %q; want %q, %q", dials, answered, tt.wantDials, tt.at)
			}
		})
	}
	// Answering nowhere: every address is tried, and the error names each.
	nowhere := "203.0.113.99"
	h := &moduletest.FlakyHost{OnlyAt: &nowhere}
	err := boot.Reconnect(context.Background(), h, boot.Options{Timeout: 3 * time.Second, Sleep: time.Second, AttemptTimeout: time.Second, Elsewhere: []string{v6}},
		func(context.Context) (bool, error) { return true, nil })
	if err == nil || errors.Is(err, transport.ErrUnreachable) || !strings.Contains(err.Error(), "at its own address: dial ks1") || !strings.Contains(err.Error(), "at "+v6+": dial ks1") {
		t.Errorf("err = %v", err)
	}
}
