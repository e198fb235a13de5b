// Package boot is what modules that restart a host share: its boot id,
// reconnecting until it answers again (a changed host key ends the wait, as
// only a person can decide to trust it), and waiting for a new boot of the
// system wanted.
package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/nixbook/nixbook/internal/clock"
	"github.com/nixbook/nixbook/internal/facts"
	"github.com/nixbook/nixbook/internal/hostkeys"
	"github.com/nixbook/nixbook/internal/modules"
	"github.com/nixbook/nixbook/internal/modules/internal/modkit"
	"github.com/nixbook/nixbook/internal/transport"
)

// IDPath changes on every boot; Linux makes it up at boot time.
const IDPath = "/proc/sys/kernel/random/boot_id"

// Options tune Reconnect and WaitNew.
type Options struct {
	Timeout time.Duration // overall bound
	Sleep   time.Duration // first pause between attempts
	// MaxSleep caps the pause, which doubles after each failed attempt up to
	// it; at or below Sleep the pause stays fixed.
	MaxSleep  time.Duration
	NewSystem bool
	// StaleKeys are the keys of the system the host is leaving, replaced by
	// a key pinned in advance: a host still offering one of them is not
	// there yet and is retried, while any other changed key ends the wait.
	StaleKeys []gossh.PublicKey
	// Elsewhere are other addresses of the host (its IPv6 address, say),
	// tried in turn whenever it does not answer at its own within
	// AttemptTimeout: a host whose network came up otherwise may answer
	// there. Answered is told where each connection was made: one of
	// Elsewhere, or "" for its own address.
	Elsewhere      []string
	AttemptTimeout time.Duration
	Answered       func(addr string)
	Clock          clock.Clock
}

// stale says whether offered is one of keys.
func stale(keys []gossh.PublicKey, offered gossh.PublicKey) bool {
	for _, k := range keys {
		if offered != nil && bytes.Equal(k.Marshal(), offered.Marshal()) {
			return true
		}
	}
	return false
}

// Reconnect reconnects to h and asks ready, again and again, until ready
// says yes or the timeout passes. A changed host key ends the wait at once (unless
// NewSystem accepts it): only a person can decide to trust it. Every other
// failure, refused connections and failing ready checks alike, is retried.
func Reconnect(ctx context.Context, h modules.Host, o Options, ready func(ctx context.Context) (bool, error)) error {
	start := o.Clock.Now()
	deadline := start.Add(o.Timeout)
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	pause := o.Sleep
	if pause <= 0 {
		pause = 100 * time.Millisecond // no busy loop against a host
	}
	dial := transport.DialOptions{NewSystem: o.NewSystem, Log: func(s string) { h.Log("%s", s) }}
	var last error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := dialAnywhere(wctx, h, dial, o)
		var changed *hostkeys.ChangedError
		switch {
		case errors.As(err, &changed) && !stale(o.StaleKeys, changed.Offered):
			return err
		case err != nil:
			last = err
		default:
			ok, rerr := ready(wctx)
			if ok && rerr == nil {
				h.Log("ready after %d attempts in %s", attempt, o.Clock.Now().Sub(start).Round(time.Millisecond))
				return nil
			}
			last = rerr
			if last == nil {
				last = errors.New("not ready yet")
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if wctx.Err() != nil || !o.Clock.Now().Add(pause).Before(deadline) {
			return giveUp(o.Timeout, attempt, last)
		}
		h.Log("attempt %d: %v; next in %s", attempt, last, pause)
		if err := o.Clock.Sleep(wctx, pause); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return giveUp(o.Timeout, attempt, last)
		}
		if o.MaxSleep > pause {
			pause = min(pause*2, o.MaxSleep)
		}
	}
}

// giveUp is the error of a wait that ran out of time. It quotes the last
// attempt's error without wrapping it: a host that does not come back in
// time is the waiting task's failure, which a block's rescue may take over
// (kexec_fallback), not an unreachable host that stops the play.
func giveUp(timeout time.Duration, attempts int, last error) error {
	return fmt.Errorf("gave up after %s and %d attempts: %v", timeout, attempts, last)
}

// dialAnywhere connects to h at its own address or, failing that within
// o.AttemptTimeout, at one of o.Elsewhere. Without Elsewhere it dials until
// ctx ends.
func dialAnywhere(ctx context.Context, h modules.Host, dial transport.DialOptions, o Options) error {
	if len(o.Elsewhere) == 0 {
		return h.Reconnect(ctx, dial)
	}
	limit := o.AttemptTimeout
	if limit <= 0 {
		limit = 20 * time.Second
	}
	var errs []string
	for _, addr := range append([]string{""}, o.Elsewhere...) {
		actx, cancel := context.WithTimeout(ctx, limit)
		d := dial
		d.Address = addr
		err := h.Reconnect(actx, d)
		cancel()
		var changed *hostkeys.ChangedError
		switch {
		case err == nil:
			if o.Answered != nil {
				o.Answered(addr)
			}
			return nil
		case errors.As(err, &changed) || ctx.Err() != nil:
			return err
		}
		where := addr
		if where == "" {
			where = "its own address"
		}
		errs = append(errs, fmt.Sprintf("at %s: %v", where, err))
	}
	return fmt.Errorf("%w: %s", transport.ErrUnreachable, strings.Join(errs, "; "))
}

// ReadID reads the host's boot id, a probe a plan may make.
func ReadID(ctx context.Context, h modules.ReadOnlyHost) (string, error) {
	b, err := h.ReadFile(ctx, IDPath)
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// WaitNew reconnects until the host answers on a boot other than old and
// then says it is ready. It returns the new boot id. An old of "" takes any
// boot as new.
func WaitNew(ctx context.Context, h modules.Host, o Options, old string, then func(ctx context.Context) (bool, error)) (string, error) {
	var id string
	err := Reconnect(ctx, h, o, func(ctx context.Context) (bool, error) {
		got, err := ReadID(ctx, h)
		if err != nil {
			return false, err
		}
		if old != "" && got == old {
			return false, errors.New("still the old boot: the host has not rebooted yet")
		}
		id = got
		return then(ctx)
	})
	return id, err
}

// SystemOptions tune WaitSystem.
type SystemOptions struct {
	OldBootID string // "": any boot counts as new
	Timeout   time.Duration
	Clock     clock.Clock
	// Want names the system expected, for messages; Is recognizes it in
	// fresh facts.
	Want string
	Is   func(*facts.Facts) bool
	// StaleKeys, when set, are the keys of the system being left, whose
	// replacement was pinned in known_hosts before the reboot: no other new
	// key is accepted (see Options).
	StaleKeys []gossh.PublicKey
}

// WrongSystemError is a host that came back on a new boot, but in another
// system than the one expected.
type WrongSystemError struct {
	Want, Got string
}

func (e *WrongSystemError) Error() string {
	return fmt.Sprintf("came back running %s, not %s", e.Got, e.Want)
}

// TimeoutError is a host that did not come back in time.
type TimeoutError struct {
	Timeout time.Duration
	Last    error // the waiting loop's error, with its last attempt
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("did not answer SSH on a new boot within %s (%v)", modkit.Duration(e.Timeout), e.Last)
}

func (e *TimeoutError) Unwrap() error { return e.Last }

// WaitSystem reconnects, accepting and recording a new host key, until the
// host answers on a boot other than o.OldBootID; it then gathers facts again
// and checks that the system is the one wanted. It returns the new boot id.
func WaitSystem(ctx context.Context, h modules.Host, o SystemOptions) (string, error) {
	var wrong error
	id, err := WaitNew(ctx, h, Options{
		Timeout:   o.Timeout,
		Sleep:     2 * time.Second,
		MaxSleep:  10 * time.Second,
		NewSystem: o.StaleKeys == nil,
		StaleKeys: o.StaleKeys,
		Clock:     o.Clock,
	}, o.OldBootID, func(ctx context.Context) (bool, error) {
		if err := h.RefreshFacts(ctx); err != nil {
			return false, fmt.Errorf("gather facts: %w", err)
		}
		if f := h.Facts(); !o.Is(f) {
			// A new boot of the wrong system will not turn into the right
			// one by waiting longer.
			wrong = &WrongSystemError{Want: o.Want, Got: describeSystem(f)}
		}
		return true, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		return "", &TimeoutError{Timeout: o.Timeout, Last: err}
	}
	if wrong != nil {
		return id, wrong
	}
	return id, nil
}

func describeSystem(f *facts.Facts) string {
	name := f.OS.PrettyName
	if name == "" {
		name = f.OS.ID
	}
	if name == "" {
		name = "an unknown system"
	}
	if f.Hostname != "" {
		name += " (hostname " + f.Hostname + ")"
	}
	return name
}
