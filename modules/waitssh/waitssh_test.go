package waitssh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/hostkeys"
	"github.com/nixbook/nixbook/modules/moduletest"
	"github.com/nixbook/nixbook/transport"
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
		host       *fakeHost
		opts       Options
		wantErr    string
		wantDials  int
		wantSleeps string
	}{
		{
			name:      "up at once",
			host:      &fakeHost{},
			opts:      Options{Timeout: time.Minute, Sleep: time.Second},
			wantDials: 1,
		},
		{
			name:       "comes back after refused dials",
			host:       &fakeHost{failDials: 3},
			opts:       Options{Timeout: time.Minute, Sleep: time.Second},
			wantDials:  4,
			wantSleeps: "1s 1s 1s",
		},
		{
			name:       "backoff doubles up to the cap",
			host:       &fakeHost{failDials: 5},
			opts:       Options{Timeout: time.Minute, Sleep: time.Second, MaxSleep: 5 * time.Second},
			wantDials:  6,
			wantSleeps: "1s 2s 4s 5s 5s",
		},
		{
			name:       "dial works but the command fails at first",
			host:       &fakeHost{failRuns: 2},
			opts:       Options{Timeout: time.Minute, Sleep: time.Second},
			wantDials:  3,
			wantSleeps: "1s 1s",
		},
		{
			name:       "gives up at the timeout with the last error",
			host:       &fakeHost{failDials: 1000},
			opts:       Options{Timeout: 10 * time.Second, Sleep: 3 * time.Second},
			wantErr:    "gave up after 10s and 4 attempts: dial ks1: connection refused: unreachable",
			wantDials:  4,
			wantSleeps: "3s 3s 3s",
		},
		{
			name:      "a changed host key ends the wait",
			host:      &fakeHost{failDials: 1000, dialErr: &hostkeys.ChangedError{Name: "ks1"}},
			opts:      Options{Timeout: time.Minute, Sleep: time.Second},
			wantErr:   "host key of ks1 changed",
			wantDials: 1,
		},
		{
			name:       "the old system still offering its key, the new one pinned: retried",
			host:       &fakeHost{failDials: 2, dialErr: &hostkeys.ChangedError{Name: "ks1", Offered: oldKey}},
			opts:       Options{Timeout: time.Minute, Sleep: time.Second, StaleKeys: []gossh.PublicKey{oldKey}},
			wantDials:  3,
			wantSleeps: "1s 1s",
		},
		{
			name:      "a key neither pinned nor the old system's ends the wait",
			host:      &fakeHost{failDials: 1000, dialErr: &hostkeys.ChangedError{Name: "ks1", Offered: otherKey}},
			opts:      Options{Timeout: time.Minute, Sleep: time.Second, StaleKeys: []gossh.PublicKey{oldKey}},
			wantErr:   "host key of ks1 changed",
			wantDials: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			tt.opts.Clock = clock.Clock()
			err := Wait(context.Background(), tt.host, tt.opts, func(ctx context.Context) (bool, error) {
				_, err := tt.host.Run(ctx, transport.Cmd{Args: []string{"true"}})
				return err == nil, err
			})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if tt.host.dials != tt.wantDials {
				t.Errorf("dials = %d, want %d", tt.host.dials, tt.wantDials)
			}
			if got := durations(clock.sleeps); got != tt.wantSleeps {
				t.Errorf("sleeps = %q, want %q", got, tt.wantSleeps)
			}
		})
	}
}

func TestWaitCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := &fakeHost{failDials: 1000}
	clock := newFakeClock()
	c := clock.Clock()
	sleep := c.SleepFn
	c.SleepFn = func(ctx context.Context, d time.Duration) error {
		if len(clock.sleeps) == 2 {
			cancel() // the run is interrupted while the host is down
		}
		return sleep(ctx, d)
	}
	err := Wait(ctx, h, Options{Timeout: time.Hour, Sleep: time.Second, Clock: c}, func(context.Context) (bool, error) {
		return true, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want cancelled", err)
	}
	if h.dials != 3 {
		t.Errorf("dials = %d, want 3", h.dials)
	}
}

func TestModule(t *testing.T) {
	m := moduletest.New(t, Spec, "timeout: 90\ndelay: 5s\nsleep: 2s\nnew_system: true")
	p, err := m.Check(context.Background(), moduletest.NewLocalHost(t).ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	want := "change: wait up to 1m30s for SSH, accepting a new host key\n  $ true\n"
	if got := moduletest.FormatPlan(p); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
	clock := newFakeClock()
	m.(*module).clock = clock.Clock()
	h := &fakeHost{failDials: 2}
	out, err := m.Apply(context.Background(), h, p)
	if err != nil {
		t.Fatal(err)
	}
	if got := durations(clock.sleeps); got != "5s 2s 2s" {
		t.Errorf("sleeps = %q, want the delay then two pauses", got)
	}
	if out["elapsed"] != 9 {
		t.Errorf("elapsed = %v, want 9", out["elapsed"])
	}
	if len(h.runs) != 1 || h.runs[0] != "true" {
		t.Errorf("runs = %q, want one `true` once connected", h.runs)
	}
	for _, o := range h.opts {
		if !o.NewSystem {
			t.Error("a dial did not ask to accept a new system's key")
		}
	}
}

func TestModuleOnLocalHost(t *testing.T) {
	h := moduletest.NewLocalHost(t)
	m := moduletest.New(t, Spec, "")
	p, err := m.Check(context.Background(), h.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(context.Background(), h, p); err != nil {
		t.Fatal(err)
	}
	if h.Reconnects() != 1 {
		t.Errorf("reconnects = %d, want 1", h.Reconnects())
	}
}

func TestNew(t *testing.T) {
	for args, wantErr := range map[string]string{
		"timeout: 0":         "timeout must be positive",
		"timeout: soon":      "want a duration",
		"connect_timeout: 5": "unknown key \"connect_timeout\"",
	} {
		_, err := Spec.New(moduletest.Decoder(args))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: err = %v, want %q", args, err, wantErr)
		}
	}
}
